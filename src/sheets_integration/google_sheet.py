"""`GoogleSheet`: a worksheet of a Google spreadsheet as a `Sheet`, through gspread 6.

Reads take one request for the whole used range, as FORMATTED_VALUE: the text the user
sees, so "00123" typed as text (or a number formatted with leading zeros) reads "00123",
and nothing is converted to numbers on our side (unlike gspread's get_all_records).
UNFORMATTED_VALUE would turn such a formatted number into 123 and dates into serials.

Writes re-read the `Job ID` column (with the header, one batchGet) right before writing,
so they land on the rows that carry each job id now, whatever the operator sorted,
inserted or deleted; then one `values:batchUpdate` (RAW: text stays text, "=..." never
becomes a formula) with one contiguous range per row, split to stay under ~2 MB. Columns
are added with one `spreadsheets:batchUpdate` that also widens the grid when needed.

Every operation draws from the credential's shared token buckets (`quota.py`) and is
retried as a whole, re-reading first, on 408/429/5xx/timeouts/resets; after the last
attempt it raises `SheetUnavailable` or `QuotaExhausted` and the caller keeps its writes.
Specs, credentials and the HTTP client gspread talks through: `google_access.py`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account
from gspread.exceptions import APIError
from gspread.utils import absolute_range_name, rowcol_to_a1

from sheets_integration.errors import SheetError, SheetNotFound
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
from sheets_integration.google_errors import (
    CredentialError,
    GoogleApiError,
    QuotaExhausted,
    SheetAccessDenied,
    SheetUnavailable,
    classify,
    google_error,
    refresh_error_text,
)
from sheets_integration.quota import (
    Failure,
    QuotaRegistry,
    QuotaSettings,
    RetryPolicy,
    call_with_retry,
    default_registry,
)
from sheets_integration.safety import CellWrite, clip, plan_columns, plan_job_ids, plan_updates
from sheets_integration.sheet import (
    JOB_ID_COLUMN,
    CellValue,
    Table,
    WriteResult,
    normalize_header,
)

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 2_000_000
_WRITE_ROUNDS = 3
_GRID_END = re.compile(r"!?[A-Z]*\d*:(?P<col>[A-Z]+)(?P<row>\d+)$")

T = TypeVar("T")


# --- the backend ---------------------------------------------------------------------------


@dataclass
class _Worksheet:
    sheet_id: int
    title: str
    rows: int
    cols: int

    def a1(self, ref: str | None = None) -> str:
        return absolute_range_name(self.title, ref)


class GoogleSheet:
    """A worksheet of a Google spreadsheet, implementing the `Sheet` protocol.

    `spec` is a URL, key or `key/worksheet` (the first worksheet when none is named).
    `credentials` defaults to $GOOGLE_APPLICATION_CREDENTIALS, `api_url` to
    $SHEETBATCH_SHEETS_API_URL, then Google. All instances using one credential share
    the buckets of `registry` (the process-wide one by default). `sleep` and `rng` drive
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
        self._retry = retry or RetryPolicy()
        self._max_payload = max_payload_bytes
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.RLock()
        self._ws: _Worksheet | None = None
        self._sheet_id: int | None = None
        self._header: list[str] | None = None

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
        title = self._ws.title if self._ws is not None else self._title
        if title:
            return f"{self.key}/{title}"
        return f"{self.key}#gid={self._gid}" if self._gid is not None else self.key

    def worksheet_title(self) -> str:
        """The worksheet's title (fetching the spreadsheet's metadata once)."""
        return self._run("open", lambda: self._worksheet().title)

    # --- the Sheet protocol --------------------------------------------------------------

    def read(self) -> Table:
        """The whole used range as the text the user sees (one request)."""
        return self._run("read", self._read_table)

    def ensure_columns(self, columns: Sequence[str]) -> Table:
        """Append the missing `columns` after the used area (one request); the table."""
        wanted = list(columns)

        def attempt() -> Table:
            table = self._read_table()
            new = plan_columns(table, wanted)
            if not new:
                return table
            self._add_columns(new)
            header = list(table.header)
            for cell in new:
                header.extend([""] * (cell.column + 1 - len(header)))
                header[cell.column] = cell.text
            self._header = header
            return Table(header, table.rows)

        return self._run("add columns", attempt)

    def assign_job_ids(
        self,
        assignments: Mapping[int, str],
        expected: Mapping[int, Mapping[str, str]],
        *,
        job_column: str = JOB_ID_COLUMN,
    ) -> set[int]:
        """Write job ids into rows still matching `expected` (checked on a fresh read).

        Each write also returns the row's `expected` cells as they stood when the id landed;
        a row the operator moved in between gets its previous id back and is refused.
        """
        if not assignments:
            return set()

        def attempt() -> set[int]:
            table = self._read_table()
            plan = plan_job_ids(table, assignments, expected, job_column=job_column)
            if plan.header_cells:
                self._add_columns(plan.header_cells)
                table = self._read_table()
            cells = [c for c in plan.cells if c.row >= 0]
            # The expected cells (except Job ID, which this write changes) show where it landed.
            checked = {c for row in expected.values() for c in row}
            watched = {
                c: p
                for c, p in self._positions(table, checked).items()
                if normalize_header(c) != normalize_header(job_column)
            }
            after = self._write_cells(cells, watch=watched.values())
            refused = set(plan.refused)
            victims: dict[int, tuple[str, dict[int, str]]] = {}
            for cell in cells:
                seen = after.get(cell.row, {})
                wanted = expected.get(cell.row, {})
                if any(seen.get(watched[c], "") != v for c, v in wanted.items() if c in watched):
                    refused.add(cell.row)
                    victims[cell.row] = (_previous_id(table, seen, watched, job_column), seen)
            if victims:
                self._restore_ids(victims, cells, watched)
            return refused

        return self._run("assign job ids", attempt)

    def write_by_job_id(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        *,
        job_column: str = JOB_ID_COLUMN,
        fill_only: Collection[str] = (),
    ) -> WriteResult:
        """Write each job's cells into the row carrying its id now; missing ids reported.

        Every row's range includes its `Job ID` cell (as null: unchanged), so the answer
        shows which job each row held at the instant of the write. Rows the operator moved
        between our read and our write are put back as they were, and those jobs written
        again after a fresh read.
        """
        if not updates:
            return WriteResult()
        values = {
            job: {c: clip(v) if isinstance(v, str) else v for c, v in cells.items()}
            for job, cells in updates.items()
        }

        def attempt() -> WriteResult:
            pending = dict(values)
            missing: set[str] = set()
            written = kept = 0
            options: dict[str, Any] = {"job_column": job_column, "fill_only": fill_only}
            for _round in range(_WRITE_ROUNDS):
                table = self._snapshot(
                    {c for cells in pending.values() for c in cells}, job_column=job_column
                )
                plan = plan_updates(table, pending, self.name, **options)
                if plan.header_cells:
                    # An output column is gone (deleted mid-run): place it on the whole sheet.
                    table = self._read_table()
                    plan = plan_updates(table, pending, self.name, **options)
                    self._add_columns(plan.header_cells)
                missing |= plan.missing
                kept += plan.kept
                cells = [c for c in plan.cells if c.row >= 0]
                job_col = table.index(job_column)
                assert job_col is not None  # plan_updates raised MissingColumn otherwise
                after = self._write_cells(cells, watch=[job_col])
                owner = {c.row: table.cell(c.row, job_column).strip() for c in cells}
                moved = {
                    row: after.get(row, {}).get(job_col, "").strip()
                    for row, job in owner.items()
                    if after.get(row, {}).get(job_col, "").strip() != job
                }
                landed = {job for row, job in owner.items() if row not in moved}
                written += sum(1 for c in cells if c.row not in moved)
                if not moved:
                    return WriteResult(cells=written, missing=frozenset(missing), kept=kept)
                log.warning(
                    "%s: %d rows moved while being written; putting them back",
                    self.name,
                    len(moved),
                )
                self._restore_rows(moved, cells, table, job_col, job_column)
                pending = {j: v for j, v in pending.items() if j not in landed | missing}
            raise SheetUnavailable(
                f"{self.name}: rows kept moving while statuses were written; "
                "nothing is lost, they are written again on the next flush"
            )

        return self._run("write", attempt)

    # --- verified writes -------------------------------------------------------------------

    @staticmethod
    def _positions(table: Table, columns: Iterable[str]) -> dict[str, int]:
        found = {c: table.index(c) for c in columns}
        return {c: i for c, i in found.items() if i is not None}

    def _restore_rows(
        self,
        moved: Mapping[int, str],
        cells: list[CellWrite],
        table: Table,
        job_col: int,
        job_column: str,
    ) -> None:
        """Give rows written by mistake back their cells from `table` (the read before)."""
        rows = table.job_rows(job_column)
        restore: list[CellWrite] = []
        for cell in cells:
            if cell.row not in moved:
                continue
            occupant = moved[cell.row]
            before = rows.get(occupant) if occupant else None
            line = table.rows[before] if before is not None else []
            value = line[cell.column] if cell.column < len(line) else ""
            restore.append(CellWrite(cell.row, cell.column, value))
        after = self._write_cells(restore, watch=[job_col])
        for row, occupant in moved.items():
            if after.get(row, {}).get(job_col, "").strip() != occupant:
                raise SheetUnavailable(
                    f"{self.name}: rows moved twice during one write; some status cells may "
                    "be wrong until the next flush rewrites them"
                )

    def _restore_ids(
        self,
        victims: Mapping[int, tuple[str, dict[int, str]]],
        cells: list[CellWrite],
        watched: Mapping[str, int],
    ) -> None:
        """Give rows that received a job id by mistake their previous id back.

        `victims` maps each such row to (its previous id, its watched cells as seen).
        """
        log.warning("%s: %d rows moved while job ids were written", self.name, len(victims))
        restore = [CellWrite(c.row, c.column, victims[c.row][0]) for c in cells if c.row in victims]
        after = self._write_cells(restore, watch=watched.values())
        for row, (_, seen) in victims.items():
            if any(after.get(row, {}).get(p, "") != seen.get(p, "") for p in watched.values()):
                raise SheetUnavailable(
                    f"{self.name}: rows moved twice while job ids were written; "
                    "check the Job ID column for an id on the wrong row"
                )

    # --- requests --------------------------------------------------------------------------

    def _worksheet(self) -> _Worksheet:
        if self._ws is not None:
            return self._ws
        meta = self._http.fetch_sheet_metadata(
            self.key,
            params={"includeGridData": "false", "fields": "spreadsheetId,sheets.properties"},
        )
        sheets = [s.get("properties", {}) for s in meta.get("sheets", [])]
        chosen = self._choose(sheets)
        self._sheet_id = int(chosen.get("sheetId", 0))
        grid = chosen.get("gridProperties", {})
        self._ws = _Worksheet(
            int(chosen.get("sheetId", 0)),
            str(chosen.get("title", "")),
            int(grid.get("rowCount", 0)),
            int(grid.get("columnCount", 0)),
        )
        return self._ws

    def _choose(self, sheets: list[dict[str, Any]]) -> dict[str, Any]:
        titles = ", ".join(repr(s.get("title")) for s in sheets) or "none"
        if self._sheet_id is not None:
            # Opened before: follow the worksheet by id, whatever it is called now.
            same = [s for s in sheets if s.get("sheetId") == self._sheet_id]
            if same:
                return same[0]
            raise SheetNotFound(
                f"worksheet {self.name} (deleted while the batch ran?)",
                f"its worksheets are {titles}",
            )
        if self._gid is not None:
            found = [s for s in sheets if s.get("sheetId") == self._gid]
            what, hint = f"worksheet gid={self._gid}", f"its worksheets are {titles}"
        elif self._title is not None:
            found = [s for s in sheets if s.get("title") == self._title] or [
                s for s in sheets if str(s.get("title", "")).casefold() == self._title.casefold()
            ]
            what, hint = f"worksheet {self._title!r}", f"its worksheets are {titles}"
        else:
            found = sorted(sheets, key=lambda s: int(s.get("index", 0)))[:1]
            what, hint = "any worksheet", "add a worksheet"
        if not found:
            raise SheetNotFound(f"{what} in Google spreadsheet {self.key}", hint)
        return found[0]

    def _read_table(self) -> Table:
        ws = self._worksheet()
        body = self._http.values_get(
            self.key, ws.a1(), params={"valueRenderOption": "FORMATTED_VALUE"}
        )
        values = [[str(v) for v in row] for row in body.get("values", [])]
        grid = _GRID_END.search(str(body.get("range", "")))
        if grid is not None:
            ws.rows = int(grid["row"])
            ws.cols = _column_number(grid["col"])
        table = Table(values[0] if values else [], values[1:])
        self._header = table.header
        return table

    def _snapshot(self, columns: Iterable[str], *, job_column: str = JOB_ID_COLUMN) -> Table:
        """The header, `Job ID` and `columns` as they stand now, in one batchGet.

        Other cells read as "". Falls back to reading the whole sheet when the columns'
        places are not known yet or have changed (a column inserted, moved or deleted).
        """
        ws = self._worksheet()
        if self._header is None:
            return self._read_table()
        known = Table(self._header)
        names = {job_column, *columns}
        places = {name: known.index(name) for name in names}
        if any(p is None for p in places.values()):
            return self._read_table()
        positions = sorted({p for p in places.values() if p is not None})
        letters = [_column_letters(p) for p in positions]
        body = self._http.values_batch_get(
            self.key,
            [ws.a1("1:1"), *(ws.a1(f"{c}:{c}") for c in letters)],
            params={"valueRenderOption": "FORMATTED_VALUE"},
        )
        ranges = body.get("valueRanges", [])
        header = [str(v) for v in ((ranges[0].get("values") or [[]])[0] if ranges else [])]
        fresh = Table(header)
        if any(fresh.index(name) != place for name, place in places.items()):
            return self._read_table()
        self._header = header
        columns_values = [r.get("values", []) for r in ranges[1:]]
        height = max((len(v) for v in columns_values), default=1) - 1
        rows = [[""] * (positions[-1] + 1) for _ in range(max(height, 0))]
        for position, values in zip(positions, columns_values, strict=True):
            for i, cell in enumerate(values[1:]):
                rows[i][position] = str(cell[0]) if cell else ""
        return Table(header, rows)

    def _add_columns(self, header_cells: list[CellWrite]) -> None:
        """Write header cells of new columns, widening the grid first: one batchUpdate."""
        ws = self._worksheet()
        needed = max(cell.column for cell in header_cells) + 1
        requests_: list[dict[str, Any]] = []
        if needed > ws.cols:
            requests_.append(
                {
                    "appendDimension": {
                        "sheetId": ws.sheet_id,
                        "dimension": "COLUMNS",
                        "length": needed - ws.cols,
                    }
                }
            )
        for start, names in _runs({cell.column: cell.text for cell in header_cells}):
            requests_.append(
                {
                    "updateCells": {
                        "start": {"sheetId": ws.sheet_id, "rowIndex": 0, "columnIndex": start},
                        "rows": [
                            {"values": [{"userEnteredValue": {"stringValue": n}} for n in names]}
                        ],
                        "fields": "userEnteredValue",
                    }
                }
            )
        self._http.batch_update(self.key, {"requests": requests_})
        ws.cols = max(ws.cols, needed)
        log.info("%s: added columns %s", self.name, ", ".join(c.text for c in header_cells))

    def _write_cells(
        self, cells: list[CellWrite], watch: Iterable[int] = ()
    ) -> dict[int, dict[int, str]]:
        """values:batchUpdate, RAW, one contiguous range per row; the rows as written.

        Each row's range also spans the `watch` columns, sent as null (left unchanged), so
        the answer (includeValuesInResponse) shows them as they were at the write:
        {row: {column: value}}.
        """
        if not cells:
            return {}
        ws = self._worksheet()
        by_row: dict[int, dict[int, CellValue | None]] = {}
        for cell in cells:
            by_row.setdefault(cell.row, {})[cell.column] = cell.value
        watched = list(watch)
        data: list[tuple[int, int, dict[str, Any]]] = []
        for row, columns in sorted(by_row.items()):
            for column in watched:
                columns.setdefault(column, None)
            first, last = min(columns), max(columns)
            ref = f"{rowcol_to_a1(row + 2, first + 1)}:{rowcol_to_a1(row + 2, last + 1)}"
            values = [columns.get(c) for c in range(first, last + 1)]
            entry = {"range": ws.a1(ref), "majorDimension": "ROWS", "values": [values]}
            data.append((row, first, entry))
        after: dict[int, dict[int, str]] = {}
        for chunk in _chunks(data, self._max_payload):
            body = self._http.values_batch_update(
                self.key,
                {
                    "valueInputOption": "RAW",
                    "includeValuesInResponse": True,
                    "responseValueRenderOption": "FORMATTED_VALUE",
                    "data": [entry for _, _, entry in chunk],
                },
            )
            for (row, first, _), response in zip(chunk, body.get("responses", []), strict=False):
                written = (response.get("updatedData", {}).get("values") or [[]])[0]
                after[row] = {first + i: str(v) for i, v in enumerate(written)}
        return after

    # --- retries and error translation -----------------------------------------------------

    def _run(self, what: str, attempt: Callable[[], T]) -> T:
        with self._lock:
            try:
                return self._with_retries(what, attempt)
            except APIError as exc:
                if google_error(exc).code == 400 and self._ws is not None:
                    # A renamed or deleted worksheet breaks our ranges: re-read metadata once.
                    self._ws = None
                    try:
                        return self._with_retries(what, attempt)
                    except APIError as again:
                        raise self._translate(again) from again
                raise self._translate(exc) from exc
            except auth_exceptions.RefreshError as exc:
                raise CredentialError(
                    f"{self.name}: Google refused the credential of {self.account} "
                    f"({refresh_error_text(exc)}); check the key file, or create a new key"
                ) from exc

    def _with_retries(self, what: str, attempt: Callable[[], T]) -> T:
        return call_with_retry(
            attempt,
            classify=classify,
            give_up=lambda failure, exc, attempts: self._give_up(what, failure, attempts),
            policy=self._retry,
            idempotent=True,  # every attempt re-reads, then writes what it just planned
            sleep=self._sleep,
            rng=self._rng,
            what=f"{self.name}: {what}",
        )

    def _give_up(self, what: str, failure: Failure, attempts: int) -> SheetError:
        if failure.quota:
            return QuotaExhausted(
                f"{self.name}: Google Sheets quota still exhausted after {attempts} attempts "
                f"to {what} ({failure.reason}); nothing is lost, it is retried later "
                "(lower google.write_per_minute if this persists)"
            )
        return SheetUnavailable(
            f"{self.name}: Google Sheets unavailable after {attempts} attempts to {what} "
            f"({failure.reason}); nothing is lost, it is retried later"
        )

    def _translate(self, exc: APIError) -> SheetError:
        error = google_error(exc)
        if error.code == 404:
            return SheetNotFound(
                f"Google spreadsheet {self.key}", "check the URL or key, and that it still exists"
            )
        if error.code == 403:
            if error.reason == "SERVICE_DISABLED":
                return SheetAccessDenied(
                    f"{self.name}: the Google Sheets API is disabled for the credential's "
                    "project; enable it in the Google Cloud console"
                )
            if self._service_account:
                return SheetAccessDenied(
                    f"{self.name}: {self.account} may not edit this spreadsheet; share the "
                    f"sheet with {self.account} (as Editor)"
                )
            return SheetAccessDenied(
                f"{self.name}: the signed-in Google account may not edit this spreadsheet; "
                "ask its owner to share it with you (as Editor)"
            )
        if error.code == 401:
            return CredentialError(
                f"{self.name}: Google rejected the credential of {self.account} "
                f"({error.summary()}); check the key file, or create a new key"
            )
        return GoogleApiError(f"{self.name}: Google refused the request ({error.summary()})", error)


def _column_letters(index: int) -> str:
    return re.sub(r"\d+", "", rowcol_to_a1(1, index + 1))


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - 64
    return number


def _runs(cells: Mapping[int, str]) -> Iterator[tuple[int, list[str]]]:
    """Contiguous runs of {column: value} as (first column, values)."""
    start: int | None = None
    run: list[str] = []
    for column in sorted(cells):
        if start is not None and column == start + len(run):
            run.append(cells[column])
            continue
        if start is not None:
            yield start, run
        start, run = column, [cells[column]]
    if start is not None:
        yield start, run


def _chunks(
    data: list[tuple[int, int, dict[str, Any]]], limit: int
) -> Iterator[list[tuple[int, int, dict[str, Any]]]]:
    """`data` in groups whose JSON stays under `limit` bytes (a larger entry goes alone)."""
    chunk: list[tuple[int, int, dict[str, Any]]] = []
    size = 200  # the body around the data array
    for item in data:
        entry_size = len(json.dumps(item[2], ensure_ascii=False).encode()) + 1
        if chunk and size + entry_size > limit:
            yield chunk
            chunk, size = [], 200
        chunk.append(item)
        size += entry_size
    if chunk:
        yield chunk


def _previous_id(
    table: Table, seen: Mapping[int, str], watched: Mapping[str, int], job_column: str
) -> str:
    """The Job ID `table` showed for the row whose watched cells are `seen` ("" if unsure)."""
    matches = {
        table.cell(i, job_column)
        for i in range(len(table.rows))
        if all(table.cell(i, c) == seen.get(p, "") for c, p in watched.items())
    }
    return matches.pop() if len(matches) == 1 else ""
