"""Paged reads of a worksheet: its rows a page of row ranges at a time, into a `SpilledRows`.

One answer with every value of a 100,000-row worksheet is ~10 MB of JSON and ~60 MB of
Python lists; a batch only works on a few hundred rows at once. So a worksheet is read in
requests of `Paging.ranges` row ranges of `Paging.rows` rows each (several ranges in one
batchGet, which counts as one request: 100,000 rows are four reads), and each answer's rows
go to a `SpilledRows` before the next request is sent. The last range of the last request
runs to the end of the grid, so rows added meanwhile are read too; and when a page ends in
blank rows (in a grid taller than its data, the end of the data), the next request asks for
all the rest in one range rather than for the blank pages of the grid.

Requests follow each other, so rows may move between two of them: each request after the
first also reads again the last row the previous one read, and when that row is not what it
was (rows were inserted, deleted or sorted above it) the read starts over, up to
`_ATTEMPTS` times. Writes never rely on a read being one instant anyway: every write is
checked against what its own answer shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gspread.exceptions import APIError

from sheets_integration.google_api import DataFilter, SheetsApi, encode
from sheets_integration.google_errors import SheetUnavailable, google_error
from sheets_integration.spilled_rows import SpilledRows

_ATTEMPTS = 3

Answer = list[tuple[dict[str, Any], list[DataFilter]]]


@dataclass(frozen=True)
class Paging:
    """How a worksheet is read: `rows` per range, `ranges` per request."""

    rows: int = 5_000
    ranges: int = 5

    def __post_init__(self) -> None:
        if self.rows < 1 or self.ranges < 1:
            raise ValueError("paging needs at least one row per range and one range per request")

    @property
    def per_request(self) -> int:
        """Rows one request reads."""
        return self.rows * self.ranges


DEFAULT_PAGING = Paging()


def row_range(sheet_id: int, start: int, stop: int | None) -> DataFilter:
    """A DataFilter selecting sheet rows `start` to `stop` (0-based, exclusive; None: to the
    grid's end), every column."""
    grid: dict[str, int] = {"sheetId": sheet_id, "startRowIndex": start}
    if stop is not None:
        grid["endRowIndex"] = stop
    return {"gridRange": grid}


def requests_for(start: int, height: int, paging: Paging) -> Iterator[list[tuple[int, int | None]]]:
    """The (start, stop) row ranges of each request reading rows `start` to `height`; the
    last range of the last request is open (None), so rows added since are read too."""
    while True:
        end = start + paging.per_request
        if end >= height:
            last = [
                (row, row + paging.rows)
                for row in range(start, max(height, start + 1), paging.rows)
            ]
            yield [*last[:-1], (last[-1][0], None)]
            return
        yield [(row, row + paging.rows) for row in range(start, end, paging.rows)]
        start = end


def _texts(row: Sequence[Any]) -> list[str]:
    return [str(v) for v in row]


class _Rows:
    """Sheet rows as they arrive by index: the header, then the data rows (blank rows
    between kept, blank rows at the end dropped, as a whole-sheet answer trims them)."""

    def __init__(self) -> None:
        self.header: list[str] = []
        self.rows = SpilledRows()
        self._next = 1  # the sheet row `rows` ends before

    def put(self, index: int, values: list[str]) -> None:
        if index == 0:
            self.header = values
            return
        if not values:
            return
        while self._next < index:
            self.rows.append([])
            self._next += 1
        self.rows.append(values)
        self._next = index + 1

    def last(self, index: int) -> list[str]:
        """Sheet row `index` as put (the last one put, or a blank row)."""
        if index == 0:
            return self.header
        if index == self._next - 1:
            return self.rows[index - 1]
        return []


def _one_read(
    api: SheetsApi,
    sheet_id: int,
    height: int,
    *,
    render: str,
    paging: Paging,
    extra: Sequence[DataFilter],
) -> tuple[_Rows, Answer] | None:
    """Rows read page by page; None when a boundary row moved between two requests."""
    out = _Rows()
    found: Answer = []
    boundary: tuple[int, list[str]] | None = None
    pages = next(requests_for(0, height, paging))
    while True:
        filters = [row_range(sheet_id, a, b) for a, b in pages]
        starts = {encode(f): a for f, (a, _) in zip(filters, pages, strict=True)}
        check = b""
        if boundary is not None:
            filters.append(row_range(sheet_id, boundary[0], boundary[0] + 1))
            check = encode(filters[-1])
        else:
            filters += extra
        seen_again: list[str] = []
        last_rows = 0
        for value_range, used in api.values(filters, render=render):
            keys = {encode(f) for f in used}
            rows = value_range.get("values") or []
            if check in keys:
                seen_again = _texts(rows[0]) if rows else []
            page = [starts[k] for k in keys if k in starts]
            if page:
                for offset, row in enumerate(rows):
                    out.put(page[0] + offset, _texts(row))
                if page[0] == pages[-1][0]:
                    last_rows = len(rows)
            elif check not in keys:
                found.append((value_range, used))
        if boundary is not None and seen_again != boundary[1]:
            return None
        stop = pages[-1][1]
        if stop is None:
            return out, found
        boundary = (stop - 1, out.last(stop - 1))
        if last_rows < paging.rows:
            # The page ended in blank rows (an answer leaves out those at its end): most
            # likely the end of the data in a taller grid, so the rest is asked for in one
            # range, which costs nothing when it is empty.
            pages = [(stop, None)]
        else:
            pages = next(requests_for(stop, height, paging))


def grid_height(api: SheetsApi, sheet_id: int) -> int | None:
    """The worksheet's row count now (one request); None when it is gone."""
    for properties in api.sheets():
        if int(properties.get("sheetId", 0)) == sheet_id:
            return int(properties.get("gridProperties", {}).get("rowCount", 0))
    return None


def read_pages(
    api: SheetsApi,
    sheet_id: int,
    height: int,
    *,
    render: str,
    paging: Paging = DEFAULT_PAGING,
    extra: Sequence[DataFilter] = (),
    what: str = "the worksheet",
) -> tuple[list[str], SpilledRows, Answer]:
    """(header, data rows, the answers to `extra`) of worksheet `sheet_id`, `height` rows
    high when last seen, read in pages (see module); `extra` filters ride along in the
    first request. Raises SheetUnavailable when rows kept moving."""
    for _ in range(_ATTEMPTS):
        try:
            read = _one_read(api, sheet_id, height, render=render, paging=paging, extra=extra)
        except APIError as exc:
            # A range past the grid: rows were deleted since its height was read (or the
            # worksheet is gone, which the caller tells).
            if google_error(exc).code != 400 or (now := grid_height(api, sheet_id)) is None:
                raise
            height = now
            continue
        if read is not None:
            rows, found = read
            return rows.header, rows.rows, found
        height = grid_height(api, sheet_id) or height
    raise SheetUnavailable(f"{what}: rows kept moving while it was read; nothing was written")
