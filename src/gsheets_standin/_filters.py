"""DataFilters: values by data filter and developer metadata search.

A DataFilter is one of `a1Range`, `gridRange` or `developerMetadataLookup`. A lookup
selects the ranges its metadata sits on: a row's whole width, a column's whole height, a
whole sheet. Writes (`values:batchUpdateByDataFilter`) put the values at the top-left of
every range a filter matches and fail when they do not fit; a filter that matches nothing
writes nothing and gets no response entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gsheets_standin import _metadata
from gsheets_standin._a1 import Box, format_range
from gsheets_standin._cells import RENDER_OPTIONS
from gsheets_standin._errors import invalid_argument
from gsheets_standin._layout import Anchor
from gsheets_standin._model import Spreadsheet, Worksheet
from gsheets_standin._values import (
    Target,
    clear,
    major_dimension,
    resolve,
    response_render_option,
    value_input,
    value_range,
    write_values,
)


@dataclass(frozen=True)
class Match:
    """A range a DataFilter selects."""

    sheet: Worksheet
    box: Box

    def target(self) -> Target:
        ws, box = self.sheet, self.box
        row1 = ws.row_count if box.row1 is None else box.row1
        col1 = ws.column_count if box.col1 is None else box.col1
        text = format_range(ws.title, box.row0, box.col0, row1, col1)
        return Target(ws, box, text, text.rpartition("!")[2])

    @property
    def key(self) -> tuple[int, Box]:
        return (self.sheet.sheet_id, self.box)


def _grid_box(book: Spreadsheet, rng: Any) -> Match:
    if not isinstance(rng, dict):
        raise invalid_argument("Invalid gridRange")
    sheet_id = int(rng.get("sheetId") or 0)
    ws = book.by_id(sheet_id)
    if ws is None:
        raise invalid_argument(f"No grid with id: {sheet_id}")

    def index(name: str) -> int | None:
        value = rng.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or value < 0:
            raise invalid_argument(f"Invalid {name}: {value!r}")
        return value

    return Match(
        ws,
        Box(
            index("startRowIndex") or 0,
            index("startColumnIndex") or 0,
            index("endRowIndex"),
            index("endColumnIndex"),
        ),
    )


def matches(book: Spreadsheet, data_filter: Any, caller: str) -> list[Match]:
    """The ranges one DataFilter selects, in order."""
    if not isinstance(data_filter, dict) or len(data_filter) != 1:
        raise invalid_argument("A DataFilter needs exactly one of a1Range, gridRange or lookup")
    ((kind, value),) = data_filter.items()
    if kind == "a1Range":
        if not isinstance(value, str):
            raise invalid_argument("Invalid a1Range")
        target = resolve(book, value)
        return [Match(target.sheet, target.box)]
    if kind == "gridRange":
        return [_grid_box(book, value)]
    if kind != "developerMetadataLookup":
        raise invalid_argument(f"Unknown name \"{kind}\" at 'data_filter': Cannot find field.")
    try:
        found = _metadata.lookup(book, value, caller)
    except _metadata.MetadataError as exc:
        raise invalid_argument(str(exc)) from None
    result: list[Match] = []
    for ws, anchor in found:
        sheets = book.ordered() if ws is None else [ws]
        for sheet in sheets:
            if ws is None or anchor.kind == "SHEET":
                box = Box(0, 0, None, None)
            elif anchor.kind == "ROW":
                box = Box(anchor.index, 0, anchor.index + 1, None)
            else:
                box = Box(0, anchor.index, None, anchor.index + 1)
            result.append(Match(sheet, box))
    return result


def _filters(body: Mapping[str, Any]) -> list[Any]:
    filters = body.get("dataFilters")
    if not isinstance(filters, list) or not filters:
        raise invalid_argument("At least one dataFilter is required.")
    return filters


def batch_get(book: Spreadsheet, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
    """POST .../values:batchGetByDataFilter."""
    major = major_dimension(body.get("majorDimension"))
    option = body.get("valueRenderOption") or "FORMATTED_VALUE"
    if option not in RENDER_OPTIONS:
        raise invalid_argument(f"Invalid value at 'value_render_option', \"{option}\"")
    grouped: dict[tuple[int, Box], tuple[Match, list[Any]]] = {}
    for data_filter in _filters(body):
        for match in matches(book, data_filter, caller):
            grouped.setdefault(match.key, (match, []))[1].append(data_filter)
    result: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
    if grouped:
        result["valueRanges"] = [
            {"valueRange": value_range(match.target(), major, str(option)), "dataFilters": used}
            for match, used in grouped.values()
        ]
    return result


def batch_update(book: Spreadsheet, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
    """POST .../values:batchUpdateByDataFilter {valueInputOption, data: [DataFilterValueRange]}."""
    option = value_input(body.get("valueInputOption"), "valueInputOption")
    render = response_render_option(
        body.get("includeValuesInResponse"), body.get("responseValueRenderOption")
    )
    data = body.get("data")
    if not isinstance(data, list):
        raise invalid_argument("Invalid data: expected a list of DataFilterValueRange")
    responses: list[dict[str, Any]] = []
    sheets: set[int] = set()
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or "dataFilter" not in entry:
            raise invalid_argument(f"Invalid data[{i}]: a DataFilterValueRange needs a dataFilter")
        major = major_dimension(entry.get("majorDimension"))
        for match in matches(book, entry["dataFilter"], caller):
            written = write_values(match.target(), entry.get("values"), major, option, render)
            sheets.add(match.sheet.sheet_id)
            responses.append({**written, "dataFilter": entry["dataFilter"]})
    result: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
    if responses:
        result.update(
            totalUpdatedRows=sum(r["updatedRows"] for r in responses),
            totalUpdatedColumns=max(r["updatedColumns"] for r in responses),
            totalUpdatedCells=sum(r["updatedCells"] for r in responses),
            totalUpdatedSheets=len(sheets),
            responses=responses,
        )
    return result


def batch_clear(book: Spreadsheet, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
    """POST .../values:batchClearByDataFilter."""
    cleared = [
        clear(match.target())
        for data_filter in _filters(body)
        for match in matches(book, data_filter, caller)
    ]
    return {"spreadsheetId": book.spreadsheet_id, "clearedRanges": cleared}


def search_metadata(book: Spreadsheet, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
    """POST .../developerMetadata:search: metadata a lookup selects, or that sits on locations
    intersecting an a1Range or gridRange."""
    found: dict[int, tuple[dict[str, Any], list[Any]]] = {}
    for data_filter in _filters(body):
        if isinstance(data_filter, dict) and "developerMetadataLookup" in data_filter:
            try:
                selected = _metadata.lookup(book, data_filter["developerMetadataLookup"], caller)
            except _metadata.MetadataError as exc:
                raise invalid_argument(str(exc)) from None
        else:
            selected = []
            for match in matches(book, data_filter, caller):
                selected.extend(_on(book, match, caller))
        for ws, anchor in selected:
            entry = found.setdefault(anchor.metadata_id, (_metadata.resource(ws, anchor), []))
            entry[1].append(data_filter)
    if not found:
        return {}
    return {
        "matchedDeveloperMetadata": [
            {"developerMetadata": meta, "dataFilters": used} for meta, used in found.values()
        ]
    }


def _on(book: Spreadsheet, match: Match, caller: str) -> list[tuple[Worksheet | None, Anchor]]:
    box, ws = match.box, match.sheet
    found: list[tuple[Worksheet | None, Anchor]] = []
    for owner, anchor in book.anchors():
        if not _metadata.visible(anchor, caller):
            continue
        if owner is None or (
            owner is ws
            and (
                anchor.kind == "SHEET"
                or (anchor.kind == "ROW" and _inside(anchor.index, box.row0, box.row1))
                or (anchor.kind == "COLUMN" and _inside(anchor.index, box.col0, box.col1))
            )
        ):
            found.append((owner, anchor))
    return found


def _inside(index: int, start: int, end: int | None) -> bool:
    return start <= index and (end is None or index < end)


def get_metadata(book: Spreadsheet, metadata_id: str, caller: str) -> dict[str, Any] | None:
    """GET .../developerMetadata/{id}: the entry, or None (404)."""
    try:
        wanted = int(metadata_id)
    except ValueError:
        raise invalid_argument(f"Invalid value at 'metadata_id' ({metadata_id})") from None
    for ws, anchor in book.anchors():
        if anchor.metadata_id == wanted and _metadata.visible(anchor, caller):
            return _metadata.resource(ws, anchor)
    return None
