"""What every spreadsheets.batchUpdate request handler shares: its type and argument checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gsheets_standin._model import ACTOR, Spreadsheet, Worksheet

Handler = Callable[[Spreadsheet, Mapping[str, Any]], dict[str, Any]]


class Invalid(Exception):
    """A request argument Sheets refuses (answered 400 naming the request)."""


def sheet_of(book: Spreadsheet, sheet_id: Any) -> Worksheet:
    ws = book.by_id(int(sheet_id or 0))
    if ws is None:
        raise Invalid(f"No grid with id: {int(sheet_id or 0)}")
    return ws


def integer(value: Any, default: int | None = None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid(f"Invalid integer: {value!r}")
    return int(value)


def dimension(value: Any) -> str:
    if value not in ("ROWS", "COLUMNS"):
        raise Invalid(f"Invalid dimension: {value!r}")
    return str(value)


def grid_box(book: Spreadsheet, rng: Mapping[str, Any]) -> tuple[Worksheet, int, int, int, int]:
    ws = sheet_of(book, rng.get("sheetId"))
    row0 = integer(rng.get("startRowIndex"), 0)
    row1 = integer(rng.get("endRowIndex"), ws.row_count)
    col0 = integer(rng.get("startColumnIndex"), 0)
    col1 = integer(rng.get("endColumnIndex"), ws.column_count)
    assert row0 is not None and row1 is not None and col0 is not None and col1 is not None
    if not (0 <= row0 <= row1 <= ws.row_count and 0 <= col0 <= col1 <= ws.column_count):
        raise Invalid(
            f"Range ({row0}:{row1}, {col0}:{col1}) is outside the grid "
            f"({ws.row_count} rows, {ws.column_count} columns)"
        )
    return ws, row0, col0, row1, col1


def field_paths(fields: Any) -> set[str]:
    if not isinstance(fields, str) or not fields.strip():
        raise Invalid("You must specify at least one field to update.")
    return {f.strip().replace("/", ".") for f in fields.split(",") if f.strip()}


def caller(book: Spreadsheet) -> str:
    """The account making the request being executed (the owner for direct edits)."""
    actor = ACTOR.get()
    return book.owner if actor is None else actor[0]
