"""The batch processor: turns a sheet's rows into jobs and runs them, resuming what it can.

`prepare()` reads the sheet, selects the rows to process, writes a job id into each one's
`Job ID` cell and records the jobs in the store (or resumes an interrupted batch of the same
sheet). `run()` executes the jobs on a worker pool while the sheet writer keeps the sheet's
status cells current, and returns the final batch snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.phase import Pipeline
from pipeline.runner import JobRunner
from pipeline.workers import WorkerPool
from progress import Store
from progress.owners import new_owner, owner_alive
from progress.status import JobStatus
from progress.store import NewJob, new_job_id
from sheets_integration.errors import MissingColumn, SheetError
from sheets_integration.sheet import (
    BOOKKEEPING_COLUMNS,
    JOB_ID_COLUMN,
    STATUS_COLUMN,
    Sheet,
    Table,
)
from sheets_integration.writer import FlushReport, SheetWriter, row_cells

log = logging.getLogger(__name__)

# Status cells that mean "not finished": picked up again by the next run.
_UNFINISHED = ("", "queued", "processing", "cancelled")


class BatchBusy(SheetError):
    """Another live process is running this sheet's batch right now."""


@dataclass(frozen=True)
class RunOptions:
    """How a batch runs. `columns` maps the pipeline's input names to sheet column names."""

    concurrency: int = 8
    retry_failed: bool = False
    force: bool = False
    flush_interval: float = 2.0
    lease_seconds: float = 30.0
    max_attempts: int = 3
    columns: Mapping[str, str] = field(default_factory=dict)


def wants_processing(status: str, *, retry_failed: bool, force: bool) -> bool:
    """Row selection by the Status cell: unfinished rows; failed ones with --retry-failed."""
    text = status.strip().casefold()
    if force:
        return True
    if text.startswith("failed"):
        return retry_failed
    return any(text == s or (s and text.startswith(s)) for s in _UNFINISHED)


def _blank(values: Sequence[str]) -> bool:
    return not any(str(v).strip() for v in values)


@dataclass
class BatchProcessor:
    """Prepares and runs one sheet's batch against the store."""

    store: Store
    sheet: Sheet
    pipeline: Pipeline
    options: RunOptions = field(default_factory=RunOptions)
    services: Mapping[str, Any] = field(default_factory=dict)
    pipeline_ref: str = ""
    # The spec the sheet was opened from (a path or URL), kept with the batch so it can be
    # reopened later (a retry after a restart).
    sheet_spec: str = ""
    on_flush: Callable[[FlushReport], None] | None = None
    owner: str = field(default_factory=new_owner)

    def column_for(self, name: str) -> str:
        """The sheet column that feeds the pipeline input `name`."""
        return self.options.columns.get(name, name)

    def _check_columns(self, table: Table) -> None:
        for name in self.pipeline.inputs:
            column = self.column_for(name)
            if table.index(column) is None:
                raise MissingColumn(column, self.sheet.name, table.header)

    # ------------------------------------------------------------------ prepare
    def prepare(self) -> str:
        """Select rows, assign job ids, and create or resume the batch; its id."""
        table = self.sheet.read()
        self._check_columns(table)
        wanted = [*BOOKKEEPING_COLUMNS, *self.pipeline.output_columns]
        if any(table.index(c) is None for c in wanted):
            table = self.sheet.ensure_columns(wanted)
        selected = [
            i
            for i, values in enumerate(table.rows)
            if not _blank(values)
            and wants_processing(
                table.cell(i, STATUS_COLUMN),
                retry_failed=self.options.retry_failed,
                force=self.options.force,
            )
        ]
        batch_id, keep, settled = self._resumable(table, selected)
        if settled:
            # Finished in the store, but the sheet never heard (its last flush failed):
            # write the final state instead of doing the work again.
            self.sheet.write_by_job_id(
                {j["job_id"]: row_cells(j, self.pipeline.output_columns) for j in settled.values()}
            )
            log.info("%d finished rows written from the store, not redone", len(settled))
        fresh = [i for i in selected if i not in keep and i not in settled]
        new_jobs = self._assign(table, fresh)
        if batch_id is None:
            batch_id = self.store.create_batch(
                sheet=self.sheet.name,
                pipeline=self.pipeline_ref or self.pipeline.name,
                phases=[p.name for p in self.pipeline.phases],
                jobs=new_jobs,
                options={
                    "sheet_spec": self.sheet_spec or self.sheet.name,
                    "concurrency": self.options.concurrency,
                    "retry_failed": self.options.retry_failed,
                    "force": self.options.force,
                },
            )
            log.info("batch %s: %d rows of %s queued", batch_id, len(new_jobs), self.sheet.name)
        else:
            self.store.add_jobs(batch_id, new_jobs)
            log.info(
                "batch %s resumed: %d rows kept, %d rows added", batch_id, len(keep), len(new_jobs)
            )
        return batch_id

    def _resumable(
        self, table: Table, selected: list[int]
    ) -> tuple[str | None, set[int], dict[int, dict[str, Any]]]:
        """What the store already knows of the selected rows.

        Returns an interrupted batch of this sheet to resume (or None), the rows whose jobs
        it keeps, and the rows whose jobs already finished in a finished batch (by row).
        """
        if self.options.force or not selected:
            return None, set(), {}
        ids = {table.cell(i, JOB_ID_COLUMN).strip(): i for i in selected}
        ids.pop("", None)
        if not ids:
            return None, set(), {}
        known = self.store.jobs(job_ids=list(ids))
        by_batch: dict[str, list[dict[str, Any]]] = {}
        for job in known:
            by_batch.setdefault(job["batch_id"], []).append(job)
        running = {b for b in by_batch if self.store.batch(b)["status"] == "running"}
        final = {JobStatus.SUCCEEDED.value}
        if not self.options.retry_failed:
            final.add(JobStatus.FAILED.value)
        settled = {
            ids[j["job_id"]]: j
            for j in known
            if j["batch_id"] not in running and j["status"] in final
        }
        if not running:
            return None, set(), settled
        batch_id = max(running, key=lambda b: len(by_batch[b]))
        self._refuse_if_busy(batch_id)
        jobs = by_batch[batch_id]
        if self.options.retry_failed:
            failed = [j["job_id"] for j in jobs if j["status"] == JobStatus.FAILED.value]
            if failed:
                self.store.retry_jobs(batch_id, failed)
        return batch_id, {ids[j["job_id"]] for j in jobs}, settled

    def _refuse_if_busy(self, batch_id: str) -> None:
        now = self.store.clock()
        for owner, expires in self.store.leases(batch_id):
            if owner_alive(owner, me=self.owner) is False or expires < now:
                continue  # a dead worker's job: the pool requeues it
            raise BatchBusy(
                f"{self.sheet.name}: batch {batch_id} is being run by {owner} right now; "
                f"wait for it, or cancel it with `sheetbatch cancel {batch_id}`"
            )

    def _assign(self, table: Table, rows: list[int]) -> list[NewJob]:
        """Write a new job id into each row's `Job ID` cell; the jobs that landed."""
        inputs = [self.column_for(n) for n in self.pipeline.inputs]
        label_column = inputs[0] if inputs else None
        pending = {i: new_job_id() for i in rows}
        landed: dict[int, str] = {}
        for _attempt in range(3):
            if not pending:
                break
            # The Job ID as read is part of what must still match: an old run's id is replaced
            # only on the row it was read from.
            expected = {
                i: {
                    **{c: table.cell(i, c) for c in inputs},
                    JOB_ID_COLUMN: table.cell(i, JOB_ID_COLUMN),
                }
                for i in pending
            }
            refused = self.sheet.assign_job_ids(pending, expected)
            for i, job_id in pending.items():
                if i not in refused:
                    landed[i] = job_id
            if not refused:
                pending = {}
                break
            # The operator moved rows meanwhile: read again, find each row by its content.
            fresh = self.sheet.read()
            remap: dict[int, str] = {}
            for i in refused:
                for j in range(len(fresh.rows)):
                    if j not in remap and all(
                        fresh.cell(j, c) == v for c, v in expected[i].items()
                    ):
                        remap[j] = pending[i]
                        break
            pending, table = remap, fresh
        if pending:
            log.warning(
                "%d rows moved while being assigned job ids; they wait for the next run",
                len(pending),
            )
        jobs = []
        for i, job_id in sorted(landed.items()):
            values = {n: table.cell(i, self.column_for(n)) for n in self.pipeline.inputs}
            label = values.get(self.pipeline.inputs[0], "") if label_column else ""
            jobs.append(NewJob(row=i + 2, inputs=values, label=label, job_id=job_id))
        return jobs

    # ------------------------------------------------------------------ run
    def make_writer(self, batch_id: str) -> SheetWriter:
        return SheetWriter(
            store=self.store,
            sheet=self.sheet,
            batch_id=batch_id,
            output_columns=self.pipeline.output_columns,
            interval=self.options.flush_interval,
            on_flush=self.on_flush,
        )

    def make_pool(self) -> WorkerPool:
        runner = JobRunner(
            store=self.store, pipeline=self.pipeline, owner=self.owner, services=self.services
        )
        return WorkerPool(
            store=self.store,
            runner=runner,
            concurrency=self.options.concurrency,
            lease_seconds=self.options.lease_seconds,
            max_attempts=self.options.max_attempts,
        )

    def run(self, batch_id: str, pool: WorkerPool | None = None) -> dict[str, Any]:
        """Run the batch's jobs to the end with live sheet writes; the final batch snapshot."""
        writer = self.make_writer(batch_id)
        try:
            writer.flush()
        except Exception as exc:
            log.warning("first sheet flush failed (%s); the writer will retry", exc)
        writer.start()
        try:
            (pool or self.make_pool()).run_batch(batch_id)
        finally:
            writer.stop(final_flush=True)
        return self.store.batch(batch_id)


__all__ = ["BatchBusy", "BatchProcessor", "FlushReport", "RunOptions", "wants_processing"]
