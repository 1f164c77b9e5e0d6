"""Which Sheets v4 method a request path names (paths arrive percent-encoded)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_SPREADSHEET_PATH = re.compile(r"^/v4/spreadsheets/(?P<id>[^/:]+)(?P<rest>.*)$")
_RPC = "google.apps.sheets.v4.SpreadsheetsService."


@dataclass(frozen=True)
class Route:
    """A request's method name ("values.get"), kind ("read"/"write"/"token") and targets.

    `range_text` is the A1 range of a values route, or the id of `developerMetadata.get`.
    Requests are counted against Google's read or write quota by `kind`: the by-data-filter
    reads and the metadata search are POSTs but count as reads, as with Google.
    """

    name: str
    kind: str
    spreadsheet_id: str | None = None
    range_text: str | None = None


def route(method: str, path: str) -> Route | None:
    """The route of `method` on the raw `path`, or None (answered 404)."""
    if path == "/token":
        return Route("token", "token") if method == "POST" else None
    if path == "/v4/spreadsheets":
        return Route("spreadsheets.create", "write") if method == "POST" else None
    match = _SPREADSHEET_PATH.match(path)
    if match is None:
        return None
    key, rest = unquote(match.group("id")), match.group("rest")
    fixed = {
        ("GET", ""): ("spreadsheets.get", "read"),
        ("POST", ":batchUpdate"): ("spreadsheets.batchUpdate", "write"),
        ("POST", ":getByDataFilter"): ("spreadsheets.getByDataFilter", "read"),
        ("GET", "/values:batchGet"): ("values.batchGet", "read"),
        ("POST", "/values:batchUpdate"): ("values.batchUpdate", "write"),
        ("POST", "/values:batchClear"): ("values.batchClear", "write"),
        ("POST", "/values:batchGetByDataFilter"): ("values.batchGetByDataFilter", "read"),
        ("POST", "/values:batchUpdateByDataFilter"): ("values.batchUpdateByDataFilter", "write"),
        ("POST", "/values:batchClearByDataFilter"): ("values.batchClearByDataFilter", "write"),
        ("POST", "/developerMetadata:search"): ("developerMetadata.search", "read"),
    }
    found = fixed.get((method, rest))
    if found is not None:
        return Route(found[0], found[1], key)
    if method == "GET" and rest.startswith("/developerMetadata/"):
        return Route(
            "developerMetadata.get", "read", key, unquote(rest[len("/developerMetadata/") :])
        )
    if not rest.startswith("/values/"):
        return None
    raw = rest[len("/values/") :]
    if method == "POST" and raw.endswith(":append"):
        return Route("values.append", "write", key, unquote(raw[: -len(":append")]))
    if method == "POST" and raw.endswith(":clear"):
        return Route("values.clear", "write", key, unquote(raw[: -len(":clear")]))
    if method == "GET":
        return Route("values.get", "read", key, unquote(raw))
    if method == "PUT":
        return Route("values.update", "write", key, unquote(raw))
    return None


_RPC_NAMES = {
    "spreadsheets.get": "GetSpreadsheet",
    "spreadsheets.create": "CreateSpreadsheet",
    "spreadsheets.batchUpdate": "BatchUpdateSpreadsheet",
    "values.get": "GetValues",
    "values.batchGet": "BatchGetValues",
    "values.update": "UpdateValues",
    "values.batchUpdate": "BatchUpdateValues",
    "values.append": "AppendValues",
    "values.clear": "ClearValues",
    "values.batchClear": "BatchClearValues",
    "spreadsheets.getByDataFilter": "GetSpreadsheetByDataFilter",
    "values.batchGetByDataFilter": "BatchGetValuesByDataFilter",
    "values.batchUpdateByDataFilter": "BatchUpdateValuesByDataFilter",
    "values.batchClearByDataFilter": "BatchClearValuesByDataFilter",
    "developerMetadata.search": "SearchDeveloperMetadata",
    "developerMetadata.get": "GetDeveloperMetadata",
}


def rpc_method(route: Route) -> str:
    """The RPC name Google puts in error details, e.g. "...SpreadsheetsService.GetValues"."""
    return _RPC + _RPC_NAMES.get(route.name, "Unknown")
