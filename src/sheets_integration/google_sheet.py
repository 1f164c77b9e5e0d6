"""`GoogleSheet`: a worksheet of a Google spreadsheet as a `Sheet`, through gspread 6.

The worksheet is addressed by its sheetId and our columns by developer-metadata tags
(`google_tags.py`), never by title or A1 position: a tab renamed (even while a copy takes
its old name) or a column inserted, deleted or moved at any moment cannot redirect a read
or a write. Reads (`google_table.py`) return the text the user sees (FORMATTED_VALUE),
hyperlink targets and merged cells. Writes (`google_writes.py`) go through the column tags,
so a value lands only in a column of ours; the same request's answer shows which job each
written row held, so a row moved meanwhile is told at once, and cells written there by
mistake are put back where their previous value is known (never cleared otherwise).

Every operation draws from the credential's shared token buckets (`quota.py`); a write
takes its token *before* the read it is planned on, so no quota pause falls in between.
Operations are retried whole, re-reading first, on 408/429/5xx/timeouts/resets; after the
last attempt they raise `SheetUnavailable` or `QuotaExhausted` (`retry_later`).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account
from gspread.exceptions import APIError

from sheets_integration.google_access import (
    API_URL_ENV,
    CREDENTIALS_ENV,
    DEFAULT_TIMEOUT,
    GOOGLE_API_ROOT,
    SheetsHTTPClient,
    api_root,
    load_credentials,
    parse_sheet_spec,
)
from sheets_integration.google_api import SheetsApi
from sheets_integration.google_errors import (
    CredentialError,
    classify,
    gave_up,
    google_error,
    refused_credential,
    translated,
)
from sheets_integration.google_jobs import assign_ids
from sheets_integration.google_pages import DEFAULT_PAGING, Paging
from sheets_integration.google_table import read_values
from sheets_integration.google_updates import write_updates
from sheets_integration.google_worksheet import Worksheet
from sheets_integration.quota import (
    QuotaRegistry,
    QuotaSettings,
    RetryPolicy,
    call_with_retry,
    default_registry,
)
from sheets_integration.safety import clip
from sheets_integration.sheet import (
    JOB_ID_COLUMN,
    CellValue,
    Table,
    WriteResult,
    normalize_header,
)

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 2_000_000

T = TypeVar("T")


class GoogleSheet:
    """A worksheet of a Google spreadsheet, implementing the `Sheet` protocol.

    `spec` is a URL, key or `key/worksheet` (the first worksheet when none is named).
    `credentials` defaults to $GOOGLE_APPLICATION_CREDENTIALS, `api_url` to
    $SHEETBATCH_SHEETS_API_URL, then Google. All instances using one credential share
    the buckets of `registry` (the process-wide one by default). Rows are read a page of
    rows at a time (`paging`, see `google_pages`). `sleep` and `rng` drive
    the retry backoff. Thread-safe: operations run one at a time. Call `close()` when done.
    """

    def __init__(
        self,
        spec: str,
        *,
        credentials: str | os.PathLike[str] | None = None,
        api_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        quota: QuotaSettings | None = None,
        registry: QuotaRegistry | None = None,
        retry: RetryPolicy | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        paging: Paging = DEFAULT_PAGING,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.key, self._gid, self._title = parse_sheet_spec(spec)
        path = credentials or env.get(CREDENTIALS_ENV)
        if not path:
            raise CredentialError(
                "no Google credential: pass --credentials FILE (a service-account JSON key "
                f"or an OAuth authorized-user file) or set {CREDENTIALS_ENV}"
            )
        root = api_root(api_url or env.get(API_URL_ENV) or GOOGLE_API_ROOT)
        creds, self.account = load_credentials(path, google=root == GOOGLE_API_ROOT)
        self._service_account = isinstance(creds, service_account.Credentials)
        self._quota = (registry or default_registry()).for_account(self.account, quota)
        self._http = SheetsHTTPClient(creds)
        self._http.configure(root=root, quota=self._quota, timeout=timeout)
        self._ws = Worksheet(
            SheetsApi(self._http, self.key),
            self._http,
            gid=self._gid,
            title=self._title,
            max_payload=max_payload_bytes,
            paging=paging,
        )
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.RLock()

    @classmethod
    def open(cls, spec: str, **options: Any) -> GoogleSheet:
        """Open and check now (credential, sharing, worksheet): the `open_sheet` factory."""
        sheet = cls(spec, **options)
        try:
            sheet.worksheet_title()
        except BaseException:
            sheet.close()
            raise
        return sheet

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.session.close()

    def __enter__(self) -> GoogleSheet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def name(self) -> str:
        """`<key>/<worksheet title>` (the title once known)."""
        return self._ws.name

    def worksheet_title(self) -> str:
        """The worksheet's title (reading the spreadsheet's metadata once)."""
        return self._run("open", lambda: self._ws.title)

    # --- the Sheet protocol --------------------------------------------------------------

    def read(self) -> Table:
        """The whole used range as the text the user sees, with hyperlinks and merges."""
        return self._run("read", lambda: self._ws.state(fresh=True).table)

    def read_values(self) -> Table:
        """The text the user sees, nothing else: one read request per `paging.per_request`
        rows."""
        ws = self._ws
        return self._run("read", lambda: read_values(ws.api, ws.sheet_id, ws.height, ws.paging))

    def ensure_columns(self, columns: Sequence[str]) -> Table:
        """Append the missing `columns` after the used area (one request); the table.

        Columns already there by name are tagged as ours; new ones are inserted, tagged
        and given their header in one atomic request.
        """
        names: dict[str, str] = {}
        for column in columns:
            if not column.strip():
                raise ValueError(f"column names must not be blank: {column!r}")
            names.setdefault(normalize_header(column), column)

        def attempt() -> Table:
            # The read just made (prepare reads, then adds columns) is good enough: a tag
            # adopted on a column that moved meanwhile is checked against its header before
            # any write goes through it, and new columns are inserted, never overwritten.
            state = self._ws.state()
            if self._ws.columns.sync(state, names, names):
                self._ws.synced()
                log.info("%s: columns %s are ours", self.name, ", ".join(names.values()))
            return self._ws.state().table

        return self._run("add columns", attempt)

    def assign_job_ids(
        self,
        assignments: Mapping[int, str],
        expected: Mapping[int, Mapping[str, str]],
        *,
        job_column: str = JOB_ID_COLUMN,
    ) -> set[int]:
        """Write job ids into rows still matching `expected`; the rows refused.

        The write's answer shows each row's `expected` cells at the instant the id landed;
        a row that was another one by then is refused, and the id written on it taken back
        where its previous value is known. Rows that took their id are tagged with it.
        """
        if not assignments:
            return set()
        return self._run(
            "assign job ids",
            lambda: assign_ids(self._ws, assignments, expected, job_column),
        )

    def write_by_job_id(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        *,
        job_column: str = JOB_ID_COLUMN,
        fill_only: Collection[str] = (),
    ) -> WriteResult:
        """Write each job's cells into the row carrying its id now; see `google_updates`.

        Raises `MissingColumn` when the worksheet has no `job_column`.
        """
        if not updates:
            return WriteResult()
        job_key = normalize_header(job_column)
        values: dict[str, dict[str, CellValue]] = {}
        for job, cells in updates.items():
            if any(normalize_header(column) == job_key for column in cells):
                raise ValueError(f"job {job}: write_by_job_id must not change the Job ID column")
            values[job] = {c: clip(v) if isinstance(v, str) else v for c, v in cells.items()}
        fill = {normalize_header(column) for column in fill_only}
        return self._run("write", lambda: write_updates(self._ws, values, job_column, fill))

    # --- retries and error translation -----------------------------------------------------

    def _run(self, what: str, attempt: Callable[[], T]) -> T:
        with self._lock:
            try:
                return self._with_retries(what, attempt)
            except APIError as exc:
                error = google_error(exc)
                # Requests name the worksheet by sheetId: a 400 may mean it is gone.
                if error.code == 400 and self._ws.chosen and not self._ws.exists():
                    raise self._ws.gone() from exc
                raise translated(
                    error,
                    sheet=self.name,
                    key=self.key,
                    account=self.account,
                    service_account=self._service_account,
                ) from exc
            except auth_exceptions.RefreshError as exc:
                raise refused_credential(self.name, self.account, exc) from exc

    def _with_retries(self, what: str, attempt: Callable[[], T]) -> T:
        return call_with_retry(
            attempt,
            classify=classify,
            give_up=lambda failure, exc, attempts: gave_up(self.name, what, failure, attempts),
            policy=self._retry,
            idempotent=True,  # every attempt re-reads, then writes what it just planned
            sleep=self._sleep,
            rng=self._rng,
            what=f"{self.name}: {what}",
        )


__all__ = ["MAX_PAYLOAD_BYTES", "GoogleSheet"]
