"""spreadsheets.batchUpdate: structural requests, applied in order, all or nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gsheets_standin._batch_layout import LAYOUT_HANDLERS
from gsheets_standin._cells import InputError, apply_cell_data
from gsheets_standin._errors import invalid_argument
from gsheets_standin._model import (
    MAX_CELLS,
    EditError,
    ProtectedCell,
    Spreadsheet,
    Worksheet,
    new_sheet_id,
)
from gsheets_standin._requests import (
    Handler,
    Invalid,
    dimension,
    field_paths,
    grid_box,
    integer,
    sheet_of,
)


def _insert_dimension(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    rng = req.get("range") or {}
    ws = sheet_of(book, rng.get("sheetId"))
    start, end = integer(rng.get("startIndex"), 0), integer(rng.get("endIndex"), 0)
    assert start is not None and end is not None
    if end <= start:
        raise Invalid("endIndex must be greater than startIndex")
    if dimension(rng.get("dimension")) == "ROWS":
        if start > ws.row_count:
            raise Invalid(f"startIndex {start} is beyond the last row ({ws.row_count})")
        ws.insert_rows(start, end - start)
    else:
        if start > ws.column_count:
            raise Invalid(f"startIndex {start} is beyond the last column ({ws.column_count})")
        ws.insert_columns(start, end - start)
    return {}


def _delete_dimension(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    rng = req.get("range") or {}
    ws = sheet_of(book, rng.get("sheetId"))
    rows = dimension(rng.get("dimension")) == "ROWS"
    size = ws.row_count if rows else ws.column_count
    start, end = integer(rng.get("startIndex"), 0), integer(rng.get("endIndex"), size)
    assert start is not None and end is not None
    if not 0 <= start < end <= size:
        raise Invalid(
            f"Cannot delete {'rows' if rows else 'columns'} [{start}, {end}): the sheet has {size}"
        )
    if rows:
        ws.delete_rows(start, end)
    else:
        ws.delete_columns(start, end)
    return {}


def _append_dimension(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    ws = sheet_of(book, req.get("sheetId"))
    length = integer(req.get("length"), 0)
    assert length is not None
    if length < 1:
        raise Invalid("length must be positive")
    if dimension(req.get("dimension")) == "ROWS":
        ws.row_count += length
    else:
        ws.column_count += length
    return {}


def _sort_range(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    ws, row0, col0, row1, col1 = grid_box(book, req.get("range") or {})
    specs: list[tuple[int, bool]] = []
    for spec in req.get("sortSpecs") or []:
        column = integer(spec.get("dimensionIndex"), 0)
        assert column is not None
        if not col0 <= column < col1:
            raise Invalid(f"dimensionIndex {column} is outside the sorted range")
        order = spec.get("sortOrder") or "ASCENDING"
        if order not in ("ASCENDING", "DESCENDING"):
            raise Invalid(f"Invalid sortOrder: {order!r}")
        specs.append((column, order == "ASCENDING"))
    if not specs:
        raise Invalid("At least one sort spec is required")
    ws.sort_rows(specs, row0, row1, col0, col1)
    return {}


def _update_sheet_properties(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    props = req.get("properties") or {}
    ws = sheet_of(book, props.get("sheetId"))
    fields = field_paths(req.get("fields"))
    every = "*" in fields
    grid = props.get("gridProperties") or {}

    def wanted(path: str) -> bool:
        parent = path.split(".")[0]
        return every or path in fields or parent in fields

    if wanted("title"):
        title = props.get("title")
        if not isinstance(title, str) or not title:
            raise Invalid("A sheet title is required")
        other = book.find(title)
        if other is not None and other is not ws:
            raise Invalid(
                f'A sheet with the name "{title}" already exists. Please enter another name.'
            )
        ws.title = title
    if wanted("gridProperties.rowCount") and "rowCount" in grid:
        ws.resize(rows=integer(grid["rowCount"]))
    if wanted("gridProperties.columnCount") and "columnCount" in grid:
        ws.resize(cols=integer(grid["columnCount"]))
    if wanted("gridProperties.frozenRowCount"):
        ws.frozen_row_count = integer(grid.get("frozenRowCount"), 0) or 0
    if wanted("gridProperties.frozenColumnCount"):
        ws.frozen_column_count = integer(grid.get("frozenColumnCount"), 0) or 0
    if wanted("hidden"):
        ws.hidden = bool(props.get("hidden"))
    if wanted("index"):
        index = integer(props.get("index"), 0) or 0
        order = [s for s in book.ordered() if s is not ws]
        order.insert(min(index, len(order)), ws)
        for i, sheet in enumerate(order):
            sheet.index = i
    return {}


def _add_sheet(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    props = req.get("properties") or {}
    title = props.get("title")
    if not title:
        n = len(book.sheets) + 1
        while book.find(f"Sheet{n}") is not None:
            n += 1
        title = f"Sheet{n}"
    if book.find(title) is not None:
        raise Invalid(f'A sheet with the name "{title}" already exists. Please enter another name.')
    sheet_id = integer(props.get("sheetId")) if props.get("sheetId") is not None else new_sheet_id()
    assert sheet_id is not None
    if book.by_id(sheet_id) is not None:
        raise Invalid(f"A sheet with the id {sheet_id} already exists.")
    grid = props.get("gridProperties") or {}
    index = integer(props.get("index"), len(book.sheets))
    assert index is not None
    for ws in book.sheets:
        if ws.index >= index:
            ws.index += 1
    ws = Worksheet(
        sheet_id,
        str(title),
        min(index, len(book.sheets)),
        integer(grid.get("rowCount"), 1000) or 1000,
        integer(grid.get("columnCount"), 26) or 26,
    )
    book.sheets.append(ws)
    book.reindex()
    return {"addSheet": {"properties": ws.properties()}}


def _delete_sheet(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    ws = sheet_of(book, req.get("sheetId"))
    if len(book.sheets) == 1:
        raise Invalid("You can't remove all the sheets in a document.")
    book.sheets.remove(ws)
    book.reindex()
    return {}


def _update_cells(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    fields = field_paths(req.get("fields"))
    if not fields & {
        "*",
        "userEnteredValue",
        "textFormatRuns",
        "userEnteredFormat",
        "userEnteredFormat.textFormat",
        "userEnteredFormat.textFormat.link",
    }:
        return {}
    if "start" in req:
        start = req["start"] or {}
        ws = sheet_of(book, start.get("sheetId"))
        row0, col0 = integer(start.get("rowIndex"), 0), integer(start.get("columnIndex"), 0)
        assert row0 is not None and col0 is not None
        row1, col1 = ws.row_count, ws.column_count
    else:
        ws, row0, col0, row1, col1 = grid_box(book, req.get("range") or {})
    for r, row in enumerate(req.get("rows") or []):
        for c, data in enumerate((row or {}).get("values") or []):
            row, col = row0 + r, col0 + c
            if row >= row1 or row >= ws.row_count:
                raise Invalid(
                    f"Attempting to write row: {row}, beyond the last requested row of: {row1 - 1}"
                )
            if col >= col1 or col >= ws.column_count:
                raise Invalid(
                    f"Attempting to write column: {col}, beyond the last requested column "
                    f"of: {col1 - 1}"
                )
            try:
                ws.write(row, col, apply_cell_data(ws.get(row, col), data or {}, fields))
            except InputError as exc:
                raise Invalid(str(exc)) from None
    return {}


HANDLERS: dict[str, Handler] = {
    **LAYOUT_HANDLERS,
    "insertDimension": _insert_dimension,
    "deleteDimension": _delete_dimension,
    "appendDimension": _append_dimension,
    "sortRange": _sort_range,
    "updateSheetProperties": _update_sheet_properties,
    "addSheet": _add_sheet,
    "deleteSheet": _delete_sheet,
    "updateCells": _update_cells,
}


def batch_update(book: Spreadsheet, body: Mapping[str, Any]) -> dict[str, Any]:
    """Apply `body["requests"]` to `book` in order; the response with one reply per request.

    The caller makes it all or nothing (a copy kept only on success, or, for cell and
    metadata requests, an undo journal; see `_journal`): a failing request leaves the
    spreadsheet as it was.
    """
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise invalid_argument("Must specify at least one request.")
    replies: list[dict[str, Any]] = []
    for i, request in enumerate(requests):
        if not isinstance(request, dict) or len(request) != 1:
            raise invalid_argument(f"Invalid requests[{i}]: exactly one request kind is required")
        ((kind, payload),) = request.items()
        handler = HANDLERS.get(kind)
        if handler is None:
            raise invalid_argument(
                f"Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{i}]': "
                "Cannot find field."
            )
        try:
            replies.append(handler(book, payload or {}))
        except ProtectedCell:
            raise
        except (Invalid, EditError, ValueError) as exc:
            raise invalid_argument(f"Invalid requests[{i}].{kind}: {exc}") from None
        if book.cell_count() > MAX_CELLS:
            raise invalid_argument(
                f"Invalid requests[{i}].{kind}: This action would increase the number of cells "
                f"in the workbook above the limit of {MAX_CELLS} cells."
            )
    result: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id, "replies": replies}
    if body.get("includeSpreadsheetInResponse"):
        result["updatedSpreadsheet"] = book.resource()
    return result


__all__ = ["HANDLERS", "Invalid", "batch_update"]
