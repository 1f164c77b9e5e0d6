"""Which Sheets v4 method a request path names (paths arrive percent-encoded)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_SPREADSHEET_PATH = re.compile(r"^/v4/spreadsheets/(?P<id>[^/:]+)(?P<rest>.*)$")
_RPC = "google.apps.sheets.v4.SpreadsheetsService."


@dataclass(frozen=True)
class Route:
    """A request's method name ("values.get"), kind ("read"/"write"/"token") and targets."""

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
        ("GET", ""): "spreadsheets.get",
        ("POST", ":batchUpdate"): "spreadsheets.batchUpdate",
        ("GET", "/values:batchGet"): "values.batchGet",
        ("POST", "/values:batchUpdate"): "values.batchUpdate",
        ("POST", "/values:batchClear"): "values.batchClear",
    }
    name = fixed.get((method, rest))
    if name is not None:
        return Route(name, "read" if method == "GET" else "write", key)
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
}


def rpc_method(route: Route) -> str:
    """The RPC name Google puts in error details, e.g. "...SpreadsheetsService.GetValues"."""
    return _RPC + _RPC_NAMES.get(route.name, "Unknown")
