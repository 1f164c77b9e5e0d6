"""The library functions behind every entry point: the CLI, the web API and schedules.

One code path per action: opening a sheet from a spec, building the fetch services,
preparing and running a batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.fetcher import Fetcher
from pipeline.phase import Pipeline
from pipeline.registry import load_pipeline
from pipeline.workers import BatchExecutor
from progress import BatchSnapshot, Store, open_store
from progress.engine import is_sqlite
from progress.notify_model import Targets
from sheetbatch.config import Settings
from sheetbatch.errors import ExecutorRefused
from sheets_integration.batch import BatchProcessor, RunOptions, RunResult
from sheets_integration.errors import UnsupportedSheet
from sheets_integration.locate import backend_name
from sheets_integration.locate import open_sheet as locate_sheet
from sheets_integration.selection import Selection
from sheets_integration.sheet import Sheet

log = logging.getLogger(__name__)


def open_sheet(
    spec: str,
    settings: Settings,
    *,
    encoding: str | None = None,
    store: Store | None = None,
    **options: Any,
) -> Sheet:
    """The sheet named by `spec`: a .csv/.xlsx path, or a Google Sheets URL, key or key/tab.

    `encoding` decodes a CSV file (`--encoding cp1252`); other sheets refuse it. `options` go
    to the Google backend (a schedule's reads use a shorter retry policy). With a PostgreSQL
    `store`, a Google sheet draws from the store's quota buckets, shared by every process.
    """
    backend = backend_name(spec)
    if encoding:
        if backend != "csv":
            raise UnsupportedSheet(
                f"{spec}: --encoding applies to CSV files only "
                "(.xlsx files and Google Sheets know their own encoding)"
            )
        return locate_sheet(spec, encoding=encoding)
    if backend != "google":
        return locate_sheet(spec)
    from sheets_integration.quota import QuotaRegistry, QuotaSettings

    if store is not None and not is_sqlite(store.engine):
        # Google's quota is per credential, whichever process spends it: with a shared
        # store, every process's requests draw from the store's buckets (`shared_quota`).
        options.setdefault("registry", QuotaRegistry(shared=store.quota_state()))

    return locate_sheet(
        spec,
        credentials=settings.credentials or None,
        api_url=settings.sheets_api_url or None,
        quota=QuotaSettings(
            reads_per_minute=settings.read_per_minute,
            writes_per_minute=settings.write_per_minute,
            burst=settings.quota_burst,
        ),
        # The settings already merged the environment (GOOGLE_APPLICATION_CREDENTIALS,
        # SHEETBATCH_SHEETS_API_URL): the backend must not read it a second time.
        environ={},
        **options,
    )


def store_for(settings: Settings, *, create: bool = True, **options: Any) -> Store:
    """Open the progress store the settings name, within the process's `[store] pool_size`.

    Without `create` (commands that only read it), a store that does not exist raises
    `StoreNotFound` instead of being created. `options` go to `open_store` (`poll_interval`).
    """
    return open_store(settings.db, create=create, pool_size=settings.pool_size, **options)


@contextmanager
def services_for(settings: Settings) -> Iterator[dict[str, Any]]:
    """The shared services phases use (the fetcher), closed when the block ends."""
    fetcher = Fetcher(
        allow_hosts=settings.allow_hosts,
        timeout=settings.fetch_timeout,
        max_bytes=settings.max_page_bytes,
        max_redirects=settings.max_redirects,
        per_host=settings.per_host_concurrency,
        max_connections=max(100, settings.concurrency * 4),
    )
    try:
        yield {"fetcher": fetcher}
    finally:
        fetcher.close()


def run_options(
    settings: Settings,
    *,
    retry_failed: bool = False,
    force: bool = False,
    output_columns: Mapping[str, str] | None = None,
    overwrite: Sequence[str] = (),
    notify: Sequence[str] = (),
) -> RunOptions:
    """RunOptions from the settings and the per-run choices.

    `output_columns` are added to (and take precedence over) the configured ones;
    `overwrite` adds to the configured columns; `notify` URLs to `[notify] urls`.
    """
    mapping = dict(settings.output_columns)
    mapping.update(output_columns or {})
    return RunOptions(
        output_columns=mapping,
        overwrite=tuple(dict.fromkeys((*settings.overwrite, *overwrite))),
        concurrency=settings.concurrency,
        retry_failed=retry_failed,
        force=force,
        flush_interval=settings.flush_interval,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        columns={"Company": settings.company_column, "Website": settings.website_column},
        notify=notify_targets(settings, notify),
    )


def notify_targets(settings: Settings, urls: Sequence[str] = ()) -> Targets:
    """Where outcomes go: `[notify] urls` and `urls`, for the `[notify] events` types."""
    return Targets(tuple(dict.fromkeys((*settings.notify_urls, *urls))), settings.notify_events)


def executor_for(store: Store, settings: Settings) -> BatchExecutor | None:
    """The executor the settings choose: None for the local pool (the batch processor's
    own), or the celery executor, after checking that it can run here (a PostgreSQL store,
    a broker that answers: ExecutorRefused / BrokerUnavailable otherwise, nothing sent)."""
    if settings.executor == "local":
        return None
    if is_sqlite(store.engine):
        raise ExecutorRefused(
            "executor celery needs a PostgreSQL store (--db postgresql://…): workers in "
            "other processes and on other machines share it; a SQLite file is one machine's"
        )
    from functools import partial

    from sheetbatch.celery_app import check_broker, create_celery, publish
    from sheetbatch.dispatch import CeleryExecutor
    from sheetbatch.reconciler import Reconciler

    app = create_celery(settings.broker_url)
    check_broker(app)
    reconciler = Reconciler(
        store,
        partial(publish, app),
        lease_seconds=settings.lease_seconds,
        redispatch_seconds=settings.redispatch_seconds,
        max_attempts=settings.max_attempts,
    )
    return CeleryExecutor(store, app, reconciler)


@dataclass
class PreparedBatch:
    """A batch ready to run: its id, the processor that runs it, what became of each row,
    and the executor its rows run on (None: this process's pool)."""

    batch_id: str
    processor: BatchProcessor
    pipeline: Pipeline
    executor: BatchExecutor | None = None

    @property
    def selection(self) -> Selection:
        """What the preparation made of the sheet's rows (queued, resumed, skipped)."""
        return self.processor.selection

    def execute(self) -> RunResult:
        """Run to the end, then release the sheet; the final snapshot and write outcome."""
        try:
            return self.processor.execute(self.batch_id, pool=self.executor)
        finally:
            self.processor.sheet.close()

    def run(self) -> BatchSnapshot:
        """Run to the end, then release the sheet; the final batch snapshot."""
        return self.execute().snapshot


def make_processor(
    store: Store,
    settings: Settings,
    sheet: Sheet,
    services: Mapping[str, Any],
    *,
    sheet_spec: str,
    pipeline_ref: str | None = None,
    retry_failed: bool = False,
    force: bool = False,
    output_columns: Mapping[str, str] | None = None,
    overwrite: Sequence[str] = (),
    notify: Sequence[str] = (),
) -> BatchProcessor:
    """The batch processor for an open sheet with the settings and per-run options."""
    ref = pipeline_ref or settings.pipeline
    return BatchProcessor(
        store=store,
        sheet=sheet,
        pipeline=load_pipeline(ref),
        options=run_options(
            settings,
            retry_failed=retry_failed,
            force=force,
            output_columns=output_columns,
            overwrite=overwrite,
            notify=notify,
        ),
        services=services,
        pipeline_ref=ref,
        sheet_spec=sheet_spec,
    )


def prepare_batch(
    store: Store,
    settings: Settings,
    sheet_spec: str,
    services: dict[str, Any],
    *,
    pipeline_ref: str | None = None,
    retry_failed: bool = False,
    force: bool = False,
    output_columns: Mapping[str, str] | None = None,
    overwrite: Sequence[str] = (),
    encoding: str | None = None,
    batch_id: str | None = None,
    notify: Sequence[str] = (),
) -> PreparedBatch:
    """Open the sheet, select its rows and create (or resume) the batch in the store.

    Raises `NothingToDo` (with what became of each row) when no row is to be processed:
    no batch is recorded then. `batch_id` is an idempotency key (a schedule's tick): see
    `BatchProcessor.prepare`.
    """
    ref = pipeline_ref or settings.pipeline
    load_pipeline(ref)  # an unknown pipeline is refused before the sheet is opened
    executor = executor_for(store, settings)  # so is an executor that cannot run here
    sheet = open_sheet(sheet_spec, settings, encoding=encoding, store=store)
    try:
        processor = make_processor(
            store,
            settings,
            sheet,
            services,
            sheet_spec=sheet_spec,
            pipeline_ref=ref,
            retry_failed=retry_failed,
            force=force,
            output_columns=output_columns,
            overwrite=overwrite,
            notify=notify,
        )
        batch_id = processor.prepare(batch_id)
    except BaseException:
        sheet.close()
        raise
    return PreparedBatch(
        batch_id=batch_id, processor=processor, pipeline=processor.pipeline, executor=executor
    )
