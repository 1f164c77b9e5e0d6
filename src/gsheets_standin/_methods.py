"""Which code answers each Sheets v4 method, given the spreadsheet the request is about."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gsheets_standin import _batch, _fields, _filters, _grid, _values
from gsheets_standin._errors import not_found
from gsheets_standin._model import Spreadsheet
from gsheets_standin._routes import Route


def execute(
    route: Route,
    book: Spreadsheet,
    params: Mapping[str, list[str]],
    payload: dict[str, Any],
    caller: str,
) -> dict[str, Any]:
    """The JSON answer of `route` on `book` for `caller` (a write changes `book`: the server
    makes it all or nothing, by a copy or an undo journal)."""
    name = route.name
    answer = _answer(route, book, params, payload, caller)
    if name not in _PRUNED_BY_THEMSELVES and (params.get("fields") or [""])[-1]:
        # `fields` is a system parameter of every method: the answer keeps what it selects
        # (a caller that needs no replies asks for `fields=spreadsheetId`).
        return dict(_fields.prune(answer, _grid.mask(params)))
    return answer


_PRUNED_BY_THEMSELVES = frozenset({"spreadsheets.get", "spreadsheets.getByDataFilter"})
"""Methods that apply `fields` while they build the answer (to skip grid data unasked)."""


def _answer(
    route: Route,
    book: Spreadsheet,
    params: Mapping[str, list[str]],
    payload: dict[str, Any],
    caller: str,
) -> dict[str, Any]:
    name, text = route.name, route.range_text or ""
    if name == "spreadsheets.get":
        return _grid.get(book, params, caller)
    if name == "spreadsheets.getByDataFilter":
        return _grid.get_by_data_filter(book, params, payload, caller)
    if name == "spreadsheets.batchUpdate":
        return _batch.batch_update(book, payload)
    if name == "values.get":
        return _values.values_get(book, text, params)
    if name == "values.batchGet":
        return _values.values_batch_get(book, params)
    if name == "values.update":
        return _values.values_update(book, text, params, payload)
    if name == "values.batchUpdate":
        return _values.values_batch_update(book, payload)
    if name == "values.append":
        return _values.values_append(book, text, params, payload)
    if name == "values.clear":
        return _values.values_clear(book, text)
    if name == "values.batchClear":
        return _values.values_batch_clear(book, payload)
    if name == "values.batchGetByDataFilter":
        return _filters.batch_get(book, payload, caller)
    if name == "values.batchUpdateByDataFilter":
        return _filters.batch_update(book, payload, caller)
    if name == "values.batchClearByDataFilter":
        return _filters.batch_clear(book, payload, caller)
    if name == "developerMetadata.search":
        return _filters.search_metadata(book, payload, caller)
    if name == "developerMetadata.get":
        found = _filters.get_metadata(book, text, caller)
        if found is None:
            raise not_found()
        return found
    raise not_found()
