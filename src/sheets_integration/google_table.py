"""Reading a worksheet whole: its values, hyperlinks, merges, protected ranges and our tags.

Every request addresses the worksheet by sheetId, a page of rows at a time
(`google_pages`): `spreadsheets:getByDataFilter` pruned to what the values do not say (each
cell's hyperlink: an `=HYPERLINK(...)` formula or a linked cell, the links in its text
runs; the first one also the grid size, merged and protected ranges and column tags), and
`values:batchGetByDataFilter` for the text the user sees (FORMATTED_VALUE: "00123" stays
"00123"), the rows going to a `SpilledRows`. A worksheet of up to `Paging.per_request`
rows (25,000 by default) takes one request of each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gspread.exceptions import APIError
from gspread.utils import rowcol_to_a1

from sheets_integration.errors import SheetError
from sheets_integration.google_api import SheetsApi
from sheets_integration.google_errors import google_error
from sheets_integration.google_pages import (
    DEFAULT_PAGING,
    Paging,
    grid_height,
    read_pages,
    requests_for,
    row_range,
)
from sheets_integration.google_tags import Tag, column_tags
from sheets_integration.sheet import Table

GRID_FIELDS = (
    "sheets(properties(sheetId,title,index,gridProperties(rowCount,columnCount)),merges,"
    "protectedRanges(protectedRangeId,range,requestingUserCanEdit,warningOnly,description),"
    "data(startRow,startColumn,columnMetadata.developerMetadata,"
    "rowData.values(hyperlink,textFormatRuns(startIndex,format.link.uri),"
    "userEnteredValue.formulaValue)))"
)
"""What the first `spreadsheets:getByDataFilter` of a read is asked for: everything but the
values (of its rows)."""

LINK_FIELDS = (
    "sheets(properties.sheetId,data(startRow,startColumn,"
    "rowData.values(hyperlink,textFormatRuns(startIndex,format.link.uri),"
    "userEnteredValue.formulaValue)))"
)
"""What the next ones (of a worksheet higher than one request reads) are asked for: the
links of their rows."""

_STRING = r'"((?:[^"]|"")*)"'
_HYPERLINK = re.compile(rf"^=\s*HYPERLINK\s*\(\s*{_STRING}\s*(?:[,;].*)?\)\s*$", re.I | re.S)


class WorksheetGone(SheetError):
    """The worksheet's sheetId is no longer in the spreadsheet (deleted mid-run)."""


def a1(row: int, col: int) -> str:
    """A cell's A1 name from 0-based sheet row and column ("E2")."""
    return str(rowcol_to_a1(row + 1, col + 1))


@dataclass(frozen=True)
class Box:
    """A grid range, 0-based and half-open; `row1`/`col1` None run to the grid's edge."""

    row0: int
    col0: int
    row1: int | None
    col1: int | None

    @classmethod
    def of(cls, grid_range: Mapping[str, Any]) -> Box:
        """A GridRange of Google's JSON (zero-valued indexes are absent)."""
        return cls(
            int(grid_range.get("startRowIndex", 0)),
            int(grid_range.get("startColumnIndex", 0)),
            None if grid_range.get("endRowIndex") is None else int(grid_range["endRowIndex"]),
            None if grid_range.get("endColumnIndex") is None else int(grid_range["endColumnIndex"]),
        )

    def covers(self, row: int, col: int) -> bool:
        return (
            self.row0 <= row
            and (self.row1 is None or row < self.row1)
            and self.col0 <= col
            and (self.col1 is None or col < self.col1)
        )

    def shifted(self, start: int, count: int) -> Box:
        """This box after `count` columns were inserted at `start`."""
        col0 = self.col0 + count if self.col0 >= start else self.col0
        grows = self.col1 is not None and self.col1 > start
        col1 = None if self.col1 is None else self.col1 + count if grows else self.col1
        return Box(self.row0, col0, self.row1, col1)

    def name(self) -> str:
        """ "C2:F2" (bounded ranges only)."""
        assert self.row1 is not None and self.col1 is not None
        return f"{a1(self.row0, self.col0)}:{a1(self.row1 - 1, self.col1 - 1)}"


@dataclass(frozen=True)
class Protected:
    """A protected range this account may not edit."""

    box: Box
    description: str = ""


@dataclass
class SheetState:
    """A worksheet as read: its table, grid size, tags, merges and protections."""

    sheet_id: int
    title: str
    rows: int
    cols: int
    table: Table
    tags: list[Tag] = field(default_factory=list)
    merges: list[Box] = field(default_factory=list)
    protected: list[Protected] = field(default_factory=list)

    def unwritable(self, row: int, col: int) -> str | None:
        """Why the cell at 0-based sheet (row, col) cannot be written, or None."""
        return unwritable(self.merges, self.protected, row, col)

    def with_columns(self, start: int, names: list[str]) -> SheetState:
        """This state after our insert of empty columns `names` at `start` (no re-read):
        the header gains them; merges and protections at or right of `start` shift."""
        count = len(names)
        header = list(self.table.header)
        header = header[:start] + [""] * (start - len(header)) + names + header[start:]
        table = Table(header, self.table.rows, self.table.links, self.table.merged)
        return SheetState(
            self.sheet_id,
            self.title,
            self.rows,
            self.cols + count,
            table,
            self.tags,
            [b.shifted(start, count) for b in self.merges],
            [Protected(p.box.shifted(start, count), p.description) for p in self.protected],
        )


def unwritable(merges: list[Box], protected: list[Protected], row: int, col: int) -> str | None:
    """ "cell E2 is inside merged range C2:F2; not written", "cell E2 is protected …", or None."""
    for box in merges:
        if box.covers(row, col) and (box.row0, box.col0) != (row, col):
            return f"cell {a1(row, col)} is inside merged range {box.name()}; not written"
    for p in protected:
        if p.box.covers(row, col):
            what = f" ({p.description!r})" if p.description else ""
            return f"cell {a1(row, col)} is protected{what}; not written"
    return None


def link_of(cell: Mapping[str, Any]) -> str | None:
    """A cell's hyperlink target: its `hyperlink`, an `=HYPERLINK("url", …)` formula's URL,
    or the single link in its text runs."""
    if cell.get("hyperlink"):
        return str(cell["hyperlink"])
    formula = (cell.get("userEnteredValue") or {}).get("formulaValue")
    if isinstance(formula, str):
        match = _HYPERLINK.match(formula)
        if match is not None:
            return match.group(1).replace('""', '"')
    links = {
        str(uri)
        for run in cell.get("textFormatRuns") or []
        if (uri := ((run.get("format") or {}).get("link") or {}).get("uri"))
    }
    return links.pop() if len(links) == 1 else None


def _links(sheet: Mapping[str, Any]) -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    for data in sheet.get("data", []):
        row0, col0 = int(data.get("startRow", 0)), int(data.get("startColumn", 0))
        for r, row in enumerate(data.get("rowData", [])):
            for c, cell in enumerate(row.get("values", [])):
                target = link_of(cell)
                if target and row0 + r >= 1:
                    found[(row0 + r - 1, col0 + c)] = target
    return found


def _merged(merges: list[Box]) -> dict[tuple[int, int], str]:
    inside: dict[tuple[int, int], str] = {}
    for box in merges:
        assert box.row1 is not None and box.col1 is not None
        for row in range(max(box.row0, 1), box.row1):
            for col in range(box.col0, box.col1):
                if (row, col) != (box.row0, box.col0):
                    inside[(row - 1, col)] = box.name()
    return inside


def read_values(
    api: SheetsApi, sheet_id: int, height: int, paging: Paging = DEFAULT_PAGING
) -> Table:
    """The worksheet's text only (FORMATTED_VALUE), in pages (one request up to
    `paging.per_request` rows); `height` is its row count as last seen."""
    header, rows, _ = read_pages(api, sheet_id, height, render="FORMATTED_VALUE", paging=paging)
    return Table(header, rows)


def _first_grid(
    api: SheetsApi, sheet_id: int, height: int, paging: Paging
) -> tuple[dict[str, Any], bool]:
    """The first grid answer of a read (`height`: the row count as last seen) and whether
    it read every row."""
    for attempt in range(2):
        pages = next(requests_for(0, height, paging))
        try:
            sheet = api.grid(sheet_id, GRID_FIELDS, [row_range(sheet_id, a, b) for a, b in pages])
        except APIError as exc:
            # Rows deleted since: a range past the grid.
            if google_error(exc).code != 400 or attempt:
                raise
            height = grid_height(api, sheet_id) or 1
            continue
        if sheet is None:
            break
        return sheet, pages[-1][1] is None
    raise WorksheetGone(sheet_id)


def read_state(
    api: SheetsApi, sheet_id: int, height: int, paging: Paging = DEFAULT_PAGING
) -> SheetState:
    """The worksheet `sheet_id` as it stands (`height`: its row count as last seen), read
    in pages (`google_pages`): grid data (grid size, merges, protections, tags and the
    first rows' links), the values a page of rows at a time, then the other rows' links;
    a worksheet of up to `paging.per_request` rows in two requests. Raises WorksheetGone."""
    sheet, whole = _first_grid(api, sheet_id, height, paging)
    properties = sheet.get("properties", {})
    grid = properties.get("gridProperties", {})
    height = int(grid.get("rowCount", 0))
    title = str(properties.get("title", ""))
    header, rows, _ = read_pages(
        api, sheet_id, height, render="FORMATTED_VALUE", paging=paging, what=title
    )
    links = _links(sheet)
    used = len(rows) + 1  # the links of the rows the values showed (and any added since)
    if not whole and used > paging.per_request:
        for pages in requests_for(paging.per_request, used, paging):
            part = api.grid(sheet_id, LINK_FIELDS, [row_range(sheet_id, a, b) for a, b in pages])
            if part is None:
                raise WorksheetGone(sheet_id)
            links.update(_links(part))
    merges = [Box.of(m) for m in sheet.get("merges", [])]
    protected = [
        Protected(Box.of(p.get("range", {})), str(p.get("description", "")))
        for p in sheet.get("protectedRanges", [])
        if not p.get("requestingUserCanEdit") and not p.get("warningOnly")
    ]
    return SheetState(
        sheet_id=sheet_id,
        title=title,
        rows=height,
        cols=int(grid.get("columnCount", 0)),
        table=Table(header, rows, links, _merged(merges)),
        tags=column_tags(sheet, sheet_id),
        merges=merges,
        protected=protected,
    )
