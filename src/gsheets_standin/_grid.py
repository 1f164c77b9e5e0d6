"""spreadsheets.get and spreadsheets.getByDataFilter: the Spreadsheet resource, grid data
included on request, pruned by the `fields` parameter.

Each Sheet carries its properties, `merges`, `protectedRanges` and sheet-level
`developerMetadata`; with grid data, `data` holds the cells of each requested range
(CellData: userEnteredValue, formattedValue, hyperlink, textFormatRuns) and the row and
column metadata (`rowMetadata`, `columnMetadata`: DimensionProperties with their
developerMetadata). As in Google's JSON, fields at their default (0, false) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gsheets_standin import _fields, _metadata
from gsheets_standin._a1 import Box
from gsheets_standin._cells import to_cell_data
from gsheets_standin._errors import invalid_argument
from gsheets_standin._filters import Match, matches
from gsheets_standin._model import Spreadsheet, Worksheet
from gsheets_standin._values import resolve

_ROW_PIXELS = 21
_COLUMN_PIXELS = 100


def grid_range(sheet_id: int, box: Box) -> dict[str, Any]:
    """A GridRange as Google writes it: zero-valued and unbounded indexes left out."""
    fields = {
        "sheetId": sheet_id,
        "startRowIndex": box.row0,
        "endRowIndex": box.row1,
        "startColumnIndex": box.col0,
        "endColumnIndex": box.col1,
    }
    return {k: v for k, v in fields.items() if v}


def _protected_ranges(ws: Worksheet, book: Spreadsheet, caller: str) -> list[dict[str, Any]]:
    ranges = []
    for p in ws.layout.protections:
        can_edit = caller == book.owner or caller in p.editors
        entry: dict[str, Any] = {
            "protectedRangeId": p.range_id,
            "range": grid_range(ws.sheet_id, p.box),
            "requestingUserCanEdit": can_edit,
        }
        if p.description:
            entry["description"] = p.description
        if p.warning_only:
            entry["warningOnly"] = True
        elif can_edit:
            entry["editors"] = {"users": sorted(p.editors | {book.owner})}
        ranges.append({k: v for k, v in entry.items() if v is not False})
    return ranges


def _dimension_metadata(
    ws: Worksheet, kind: str, start: int, end: int, caller: str
) -> list[dict[str, Any]]:
    pixels = _ROW_PIXELS if kind == "ROW" else _COLUMN_PIXELS
    out: list[dict[str, Any]] = [{"pixelSize": pixels} for _ in range(start, end)]
    for anchor in ws.layout.metadata:
        if (
            anchor.kind == kind
            and start <= anchor.index < end
            and _metadata.visible(anchor, caller)
        ):
            out[anchor.index - start].setdefault("developerMetadata", []).append(
                _metadata.resource(ws, anchor)
            )
    return out


def grid_data(ws: Worksheet, box: Box, caller: str) -> dict[str, Any]:
    """GridData for `box` of `ws` (rowData trimmed after the last non-empty row and cell)."""
    row0, col0, row1, col1 = box.clamp(ws.row_count, ws.column_count)
    used_rows, _ = ws.used_extent()
    rows: list[dict[str, Any]] = []
    for r in range(row0, min(row1, used_rows)):
        values = []
        for c in range(col0, col1):
            cell = None if ws.layout.hidden_by_merge(r, c) else ws.get(r, c)
            values.append(to_cell_data(cell))
        while values and not values[-1]:
            values.pop()
        rows.append({"values": values} if values else {})
    while rows and not rows[-1]:
        rows.pop()
    data: dict[str, Any] = {
        "rowMetadata": _dimension_metadata(ws, "ROW", row0, row1, caller),
        "columnMetadata": _dimension_metadata(ws, "COLUMN", col0, col1, caller),
    }
    if row0:
        data["startRow"] = row0
    if col0:
        data["startColumn"] = col0
    if rows:
        data["rowData"] = rows
    return data


def sheet_resource(
    book: Spreadsheet, ws: Worksheet, boxes: Sequence[Box] | None, caller: str
) -> dict[str, Any]:
    """A Sheet: properties, merges, protectedRanges, developerMetadata, data for `boxes`."""
    sheet: dict[str, Any] = {"properties": ws.properties()}
    if ws.layout.merges:
        sheet["merges"] = [grid_range(ws.sheet_id, box) for box in ws.layout.merges]
    protected = _protected_ranges(ws, book, caller)
    if protected:
        sheet["protectedRanges"] = protected
    own = [
        _metadata.resource(ws, a)
        for a in ws.layout.metadata
        if a.kind == "SHEET" and _metadata.visible(a, caller)
    ]
    if own:
        sheet["developerMetadata"] = own
    if boxes is not None:
        sheet["data"] = [grid_data(ws, box, caller) for box in boxes]
    return sheet


def spreadsheet_resource(
    book: Spreadsheet, selected: Mapping[int, list[Box]] | None, grid: bool, caller: str
) -> dict[str, Any]:
    """The Spreadsheet, its sheets limited to `selected` (sheetId -> boxes) when given."""
    body = book.resource()
    sheets = []
    for ws in book.ordered():
        if selected is not None and ws.sheet_id not in selected:
            continue
        boxes = (selected or {}).get(ws.sheet_id) if selected is not None else None
        if grid and boxes is None:
            boxes = [Box(0, 0, None, None)]
        sheets.append(sheet_resource(book, ws, boxes if grid else None, caller))
    body["sheets"] = sheets
    own = [_metadata.resource(None, a) for a in book.metadata if _metadata.visible(a, caller)]
    if own:
        body["developerMetadata"] = own
    return body


def mask(params: Mapping[str, list[str]]) -> _fields.Mask | None:
    """The `fields` parameter of a request as a mask (None: everything); 400 if unparsable."""
    text = (params.get("fields") or [""])[-1]
    if not text:
        return None
    try:
        return _fields.parse(text)
    except _fields.MaskError as exc:
        raise invalid_argument(str(exc)) from None


def _flag(value: Any) -> bool:
    return value in (True, "true", "True", "1")


def get(book: Spreadsheet, params: Mapping[str, list[str]], caller: str) -> dict[str, Any]:
    """GET /v4/spreadsheets/{id}?ranges=...&includeGridData=...&fields=..."""
    ranges = params.get("ranges") or []
    grid = _flag((params.get("includeGridData") or ["false"])[-1])
    selected: dict[int, list[Box]] | None = None
    if ranges:
        selected = {}
        for text in ranges:
            target = resolve(book, text)
            selected.setdefault(target.sheet.sheet_id, []).append(target.box)
    body = spreadsheet_resource(book, selected, grid, caller)
    return dict(_fields.prune(body, mask(params)))


def get_by_data_filter(
    book: Spreadsheet, params: Mapping[str, list[str]], payload: Mapping[str, Any], caller: str
) -> dict[str, Any]:
    """POST /v4/spreadsheets/{id}:getByDataFilter {dataFilters, includeGridData}."""
    filters = payload.get("dataFilters") or []
    if not isinstance(filters, list):
        raise invalid_argument("Invalid dataFilters")
    selected: dict[int, list[Box]] | None = None
    if filters:
        selected = {}
        found: list[Match] = [m for f in filters for m in matches(book, f, caller)]
        for match in found:
            boxes = selected.setdefault(match.sheet.sheet_id, [])
            if match.box not in boxes:
                boxes.append(match.box)
    body = spreadsheet_resource(book, selected, _flag(payload.get("includeGridData")), caller)
    return dict(_fields.prune(body, mask(params)))
