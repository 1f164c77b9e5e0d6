"""spreadsheets.batchUpdate requests on what is anchored to rows and columns: developer
metadata, moved dimensions, merges, protected ranges, and duplicated sheets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gsheets_standin import _metadata
from gsheets_standin._a1 import Box
from gsheets_standin._grid import grid_range
from gsheets_standin._layout import Anchor, LayoutError
from gsheets_standin._model import Spreadsheet, Worksheet
from gsheets_standin._requests import (
    Handler,
    Invalid,
    caller,
    dimension,
    field_paths,
    grid_box,
    integer,
    sheet_of,
)


def _metadata_call(call: Any) -> Any:
    try:
        return call()
    except _metadata.MetadataError as exc:
        raise Invalid(str(exc)) from None


def _selected(book: Spreadsheet, data_filter: Any) -> list[tuple[Worksheet | None, Anchor]]:
    if not isinstance(data_filter, dict) or "developerMetadataLookup" not in data_filter:
        raise Invalid("Only developerMetadataLookup data filters select developer metadata.")
    found: list[tuple[Worksheet | None, Anchor]] = _metadata_call(
        lambda: _metadata.lookup(book, data_filter["developerMetadataLookup"], caller(book))
    )
    return found


def _create_developer_metadata(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    created = _metadata_call(
        lambda: _metadata.create(book, req.get("developerMetadata"), caller(book))
    )
    return {"createDeveloperMetadata": {"developerMetadata": created}}


def _update_developer_metadata(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    filters = req.get("dataFilters")
    if not isinstance(filters, list) or not filters:
        raise Invalid("At least one dataFilter is required.")
    found: dict[int, tuple[Worksheet | None, Anchor]] = {}
    for data_filter in filters:
        for ws, anchor in _selected(book, data_filter):
            found[anchor.metadata_id] = (ws, anchor)
    fields = field_paths(req.get("fields"))
    updated = _metadata_call(
        lambda: _metadata.update(book, list(found.values()), req.get("developerMetadata"), fields)
    )
    return {"updateDeveloperMetadata": {"developerMetadata": updated}}


def _delete_developer_metadata(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    found = _selected(book, req.get("dataFilter"))
    deleted = [_metadata.resource(ws, anchor) for ws, anchor in found]
    _metadata.remove(book, found)
    return {"deleteDeveloperMetadata": {"deletedDeveloperMetadata": deleted}}


def _move_dimension(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    source = req.get("source") or {}
    ws = sheet_of(book, source.get("sheetId"))
    start, end = integer(source.get("startIndex"), 0), integer(source.get("endIndex"))
    destination = integer(req.get("destinationIndex"))
    if start is None or end is None or destination is None or end <= start:
        raise Invalid("source needs startIndex < endIndex, and a destinationIndex")
    try:
        if dimension(source.get("dimension")) == "ROWS":
            ws.move_rows(start, end, destination)
        else:
            ws.move_columns(start, end, destination)
    except LayoutError as exc:
        raise Invalid(str(exc)) from None
    return {}


def _merge_cells(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    ws, row0, col0, row1, col1 = grid_box(book, req.get("range") or {})
    kind = req.get("mergeType") or "MERGE_ALL"
    if kind == "MERGE_ALL":
        ws.merge(row0, col0, row1, col1)
    elif kind == "MERGE_COLUMNS":
        for col in range(col0, col1):
            ws.merge(row0, col, row1, col + 1)
    elif kind == "MERGE_ROWS":
        for row in range(row0, row1):
            ws.merge(row, col0, row + 1, col1)
    else:
        raise Invalid(f"Invalid mergeType: {kind!r}")
    return {}


def _unmerge_cells(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    ws, row0, col0, row1, col1 = grid_box(book, req.get("range") or {})
    ws.unmerge(row0, col0, row1, col1)
    return {}


def _add_protected_range(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    data = req.get("protectedRange") or {}
    rng = data.get("range") or {}
    ws = sheet_of(book, rng.get("sheetId"))
    box = Box(
        integer(rng.get("startRowIndex"), 0) or 0,
        integer(rng.get("startColumnIndex"), 0) or 0,
        integer(rng.get("endRowIndex")),
        integer(rng.get("endColumnIndex")),
    )
    warning_only = bool(data.get("warningOnly"))
    users = (data.get("editors") or {}).get("users") or []
    if warning_only and users:
        raise Invalid("ProtectedRange is warningOnly. Editors cannot be set on it.")
    editors = {str(u) for u in users} | {caller(book)}
    protection = book.protect(
        ws,
        box,
        editors=editors,
        description=str(data.get("description") or ""),
        warning_only=warning_only,
    )
    reply = {
        "protectedRangeId": protection.range_id,
        "range": grid_range(ws.sheet_id, box),
        "requestingUserCanEdit": True,
    }
    if protection.description:
        reply["description"] = protection.description
    return {"addProtectedRange": {"protectedRange": reply}}


def _delete_protected_range(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    wanted = integer(req.get("protectedRangeId"))
    for ws in book.sheets:
        for protection in ws.layout.protections:
            if protection.range_id == wanted:
                if caller(book) not in protection.editors and caller(book) != book.owner:
                    raise Invalid("You do not have permission to remove this protected range.")
                ws.layout.protections.remove(protection)
                return {}
    raise Invalid(f"No protected range with id: {wanted}")


def _duplicate_sheet(book: Spreadsheet, req: Mapping[str, Any]) -> dict[str, Any]:
    source = sheet_of(book, req.get("sourceSheetId"))
    title = req.get("newSheetName") or f"Copy of {source.title}"
    index = integer(req.get("insertSheetIndex"))
    clone = book.duplicate(source, str(title), index)
    wanted_id = integer(req.get("newSheetId"))
    if wanted_id is not None:
        if book.by_id(wanted_id) is not None:
            raise Invalid(f"A sheet with the id {wanted_id} already exists.")
        clone.sheet_id = wanted_id
    return {"duplicateSheet": {"properties": clone.properties()}}


LAYOUT_HANDLERS: dict[str, Handler] = {
    "createDeveloperMetadata": _create_developer_metadata,
    "updateDeveloperMetadata": _update_developer_metadata,
    "deleteDeveloperMetadata": _delete_developer_metadata,
    "moveDimension": _move_dimension,
    "mergeCells": _merge_cells,
    "unmergeCells": _unmerge_cells,
    "addProtectedRange": _add_protected_range,
    "deleteProtectedRange": _delete_protected_range,
    "duplicateSheet": _duplicate_sheet,
}
"""Handlers by request name, merged into `_batch.HANDLERS`."""
