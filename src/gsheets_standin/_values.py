"""spreadsheets.values: get, batchGet, update, batchUpdate, append, clear, batchClear."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gsheets_standin._a1 import A1Range, Box, column_letters, format_range, parse_a1, quote_title
from gsheets_standin._cells import (
    RENDER_OPTIONS,
    VALUE_INPUT_OPTIONS,
    Cell,
    InputError,
    Unchanged,
    parse_input,
)
from gsheets_standin._errors import ApiError, invalid_argument, unparsable_range
from gsheets_standin._model import Spreadsheet, Worksheet

Params = Mapping[str, list[str]]


@dataclass(frozen=True)
class Target:
    """A request range resolved to a worksheet and a box (open ends not yet clamped)."""

    sheet: Worksheet
    box: Box
    text: str
    ref: str


def resolve(book: Spreadsheet, text: str) -> Target:
    """Resolve an A1 range of a request; 400 "Unable to parse range" when it names nothing."""
    try:
        parsed: A1Range = parse_a1(text)
    except ValueError:
        raise unparsable_range(text) from None
    if parsed.sheet is None:
        sheet = book.ordered()[0]
    else:
        found = book.find(parsed.sheet)
        if found is None:
            raise unparsable_range(text)
        sheet = found
    box = parsed.box or Box(0, 0, None, None)
    return Target(sheet, box, text, parsed.ref)


def _grid_error(target: Target) -> ApiError:
    ws = target.sheet
    ref = target.ref or "A1"
    return invalid_argument(
        f"Range ({quote_title(ws.title)}!{ref}) exceeds grid limits. "
        f"Max rows: {ws.row_count}, max columns: {ws.column_count}"
    )


def _one(params: Params, name: str, default: str, allowed: Sequence[str]) -> str:
    values = params.get(name)
    value = values[-1] if values else default
    if value not in allowed:
        snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
        raise invalid_argument(f"Invalid value at '{snake}', \"{value}\"")
    return value


def _param(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def major_dimension(value: Any) -> str:
    """A request's majorDimension ("ROWS" when unspecified); 400 for anything else."""
    if value in (None, "", "DIMENSION_UNSPECIFIED"):
        return "ROWS"
    if value not in ("ROWS", "COLUMNS"):
        raise invalid_argument(f"Invalid value at 'major_dimension', \"{value}\"")
    return str(value)


def _transpose(values: list[list[Any]], fill: Any) -> list[list[Any]]:
    width = max((len(line) for line in values), default=0)
    columns = [[line[c] if c < len(line) else fill for line in values] for c in range(width)]
    for column in columns:
        while column and column[-1] in ("", None):
            column.pop()
    while columns and not columns[-1]:
        columns.pop()
    return columns


def value_range(target: Target, major: str, render_option: str) -> dict[str, Any]:
    """A ValueRange for a read: grid-bounded range, trailing empty cells and rows trimmed."""
    ws = target.sheet
    if not target.box.fits(ws.row_count, ws.column_count):
        raise _grid_error(target)
    row0, col0, row1, col1 = target.box.clamp(ws.row_count, ws.column_count)
    values = ws.read(row0, col0, row1, col1, render_option)
    if major == "COLUMNS":
        values = _transpose(values, "")
    result: dict[str, Any] = {
        "range": format_range(ws.title, row0, col0, row1, col1),
        "majorDimension": major,
    }
    if values:
        result["values"] = values
    return result


def values_get(book: Spreadsheet, range_text: str, params: Params) -> dict[str, Any]:
    """GET .../values/{range}."""
    target = resolve(book, range_text)
    major = major_dimension(_param(params, "majorDimension"))
    render_option = _one(params, "valueRenderOption", "FORMATTED_VALUE", RENDER_OPTIONS)
    return value_range(target, major, render_option)


def values_batch_get(book: Spreadsheet, params: Params) -> dict[str, Any]:
    """GET .../values:batchGet?ranges=...&ranges=..."""
    major = major_dimension(_param(params, "majorDimension"))
    render_option = _one(params, "valueRenderOption", "FORMATTED_VALUE", RENDER_OPTIONS)
    ranges = params.get("ranges", [])
    result: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
    if ranges:
        result["valueRanges"] = [
            value_range(resolve(book, text), major, render_option) for text in ranges
        ]
    return result


def _lines(body_values: Any) -> list[list[Any]]:
    """The lines of a values array as sent (rows or columns), validated."""
    if body_values is None:
        return []
    if not isinstance(body_values, list) or not all(
        line is None or isinstance(line, list) for line in body_values
    ):
        raise invalid_argument("Invalid values: expected a list of lists (ListValue)")
    return [line if line is not None else [] for line in body_values]


def _rows_of(body_values: Any, major: str) -> list[list[Any]]:
    rows = _lines(body_values)
    if major == "COLUMNS":
        width = max((len(line) for line in rows), default=0)
        rows = [[line[r] if r < len(line) else None for line in rows] for r in range(width)]
    return rows


def write_values(
    target: Target,
    body_values: Any,
    major: str,
    option: str,
    response_render: str | None = None,
) -> dict[str, Any]:
    """Write a values array into a target box; the UpdateValuesResponse (without spreadsheetId)."""
    ws = target.sheet
    # The lines are read as sent, not transposed first: a column written far down a big
    # sheet arrives as nulls down to its rows, which cost no more than skipping them.
    lines = _lines(body_values)
    longest = max((len(line) for line in lines), default=0)
    columns = major == "COLUMNS"
    height, width = (longest, len(lines) if longest else 0) if columns else (len(lines), longest)
    box = target.box
    if box.row1 == box.row0 + 1 and box.col1 == box.col0 + 1:
        box = Box(box.row0, box.col0, None, None)  # a single cell anchors the data
    if box.row1 is not None and box.row0 + height > box.row1:
        raise invalid_argument(
            f"Requested writing within range [{target.text}], but tried writing to row "
            f"[{box.row0 + height}]"
        )
    if box.col1 is not None and box.col0 + width > box.col1:
        raise invalid_argument(
            f"Requested writing within range [{target.text}], but tried writing to column "
            f"[{column_letters(box.col0 + width - 1)}]"
        )
    if not box.fits(ws.row_count, ws.column_count) or (
        box.row0 + height > ws.row_count or box.col0 + width > ws.column_count
    ):
        raise _grid_error(target)
    cells = 0
    staged: list[tuple[int, int, Cell]] = []
    rows_hit: set[int] = set()
    columns_hit: set[int] = set()
    for i, line in enumerate(lines):
        for j, value in enumerate(line):
            if value is None:
                continue  # null: the cell is left as it is
            r, c = (j, i) if columns else (i, j)
            rows_hit.add(r)
            columns_hit.add(c)
            try:
                parsed = parse_input(value, option)
            except InputError as exc:
                raise invalid_argument(str(exc)) from None
            if isinstance(parsed, Unchanged):
                continue
            staged.append((box.row0 + r, box.col0 + c, parsed))
    for row, col, cell in staged:
        if ws.write(row, col, cell):
            cells += 1
    result: dict[str, Any] = {
        "updatedRange": format_range(
            ws.title, box.row0, box.col0, box.row0 + max(height, 1), box.col0 + max(width, 1)
        ),
        "updatedRows": len(rows_hit),
        "updatedColumns": len(columns_hit),
        "updatedCells": cells,
    }
    if response_render is not None:
        data = Target(
            ws,
            Box(box.row0, box.col0, box.row0 + max(height, 1), box.col0 + max(width, 1)),
            target.text,
            target.ref,
        )
        result["updatedData"] = value_range(data, major, response_render)
    return result


def value_input(value: Any, where: str) -> str:
    """A request's valueInputOption (required); 400 when missing or unknown."""
    if value in (None, ""):
        raise invalid_argument(f"'{where}' is required but not specified")
    if value not in VALUE_INPUT_OPTIONS:
        raise invalid_argument(f"Invalid value at '{where}', \"{value}\"")
    return str(value)


def response_render_option(include: Any, option: Any) -> str | None:
    """The render option of the values a write returns, or None when none are asked for."""
    if include not in (True, "true", "True"):
        return None
    option = option or "FORMATTED_VALUE"
    if option not in RENDER_OPTIONS:
        raise invalid_argument(f"Invalid value at 'response_value_render_option', \"{option}\"")
    return str(option)


def values_update(
    book: Spreadsheet, range_text: str, params: Params, body: Mapping[str, Any]
) -> dict[str, Any]:
    """PUT .../values/{range}?valueInputOption=..."""
    option = value_input(_param(params, "valueInputOption"), "valueInputOption")
    target = resolve(book, range_text)
    render_option = response_render_option(
        _param(params, "includeValuesInResponse"),
        _param(params, "responseValueRenderOption"),
    )
    result = write_values(
        target,
        body.get("values"),
        major_dimension(body.get("majorDimension")),
        option,
        render_option,
    )
    return {"spreadsheetId": book.spreadsheet_id, **result}


def values_batch_update(book: Spreadsheet, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST .../values:batchUpdate with {valueInputOption, data: [ValueRange...]}."""
    option = value_input(body.get("valueInputOption"), "valueInputOption")
    render_option = response_render_option(
        body.get("includeValuesInResponse"), body.get("responseValueRenderOption")
    )
    data = body.get("data") or []
    if not isinstance(data, list):
        raise invalid_argument("Invalid data: expected a list of ValueRange")
    responses = []
    sheets: set[int] = set()
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("range"), str):
            raise invalid_argument(f"Invalid data[{i}]: a ValueRange with a range is required")
        target = resolve(book, entry["range"])
        result = write_values(
            target,
            entry.get("values"),
            major_dimension(entry.get("majorDimension")),
            option,
            render_option,
        )
        sheets.add(target.sheet.sheet_id)
        responses.append({"spreadsheetId": book.spreadsheet_id, **result})
    result_body: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
    if responses:
        result_body.update(
            totalUpdatedRows=sum(r["updatedRows"] for r in responses),
            totalUpdatedColumns=max(r["updatedColumns"] for r in responses),
            totalUpdatedCells=sum(r["updatedCells"] for r in responses),
            totalUpdatedSheets=len(sheets),
            responses=responses,
        )
    return result_body


def values_append(
    book: Spreadsheet, range_text: str, params: Params, body: Mapping[str, Any]
) -> dict[str, Any]:
    """POST .../values/{range}:append: write after the table that starts at the range.

    The table is the block of consecutive non-empty rows starting at the range's first row;
    INSERT_ROWS inserts rows for the new data, OVERWRITE (the default) writes over empty
    rows, growing the grid when needed.
    """
    option = value_input(_param(params, "valueInputOption"), "valueInputOption")
    insert = _one(params, "insertDataOption", "OVERWRITE", ("OVERWRITE", "INSERT_ROWS"))
    render_option = response_render_option(
        _param(params, "includeValuesInResponse"),
        _param(params, "responseValueRenderOption"),
    )
    target = resolve(book, range_text)
    ws = target.sheet
    major = major_dimension(body.get("majorDimension"))
    rows = _rows_of(body.get("values"), major)
    row0, col0, _row1, col1 = target.box.clamp(ws.row_count, ws.column_count)
    end = row0
    while end < ws.row_count and not ws.row_is_empty(end, col0, col1):
        end += 1
    result: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
    if end > row0:
        used_cols = max(
            (len(ws.rows[r]) for r in range(row0, min(end, len(ws.rows)))), default=col0 + 1
        )
        result["tableRange"] = format_range(ws.title, row0, col0, end, min(used_cols, col1))
    if insert == "INSERT_ROWS" and rows:
        ws.insert_rows(min(end, ws.row_count), len(rows))
    elif end + len(rows) > ws.row_count:
        ws.row_count = end + len(rows)
    width = max((len(line) for line in rows), default=1)
    write_target = Target(ws, Box(end, col0, end + max(len(rows), 1), col0 + width), range_text, "")
    updates = write_values(write_target, rows, "ROWS", option, render_option)
    result["updates"] = {"spreadsheetId": book.spreadsheet_id, **updates}
    return result


def values_clear(book: Spreadsheet, range_text: str) -> dict[str, Any]:
    """POST .../values/{range}:clear."""
    target = resolve(book, range_text)
    return {"spreadsheetId": book.spreadsheet_id, "clearedRange": clear(target)}


def values_batch_clear(book: Spreadsheet, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST .../values:batchClear with {ranges: [...]}."""
    ranges = body.get("ranges") or []
    targets = [resolve(book, text) for text in ranges]
    return {"spreadsheetId": book.spreadsheet_id, "clearedRanges": [clear(t) for t in targets]}


def clear(target: Target) -> str:
    """Empty the cells of `target`; the cleared range in A1 notation."""
    ws = target.sheet
    if not target.box.fits(ws.row_count, ws.column_count):
        raise _grid_error(target)
    row0, col0, row1, col1 = target.box.clamp(ws.row_count, ws.column_count)
    for r in range(row0, min(row1, len(ws.rows))):
        for c in range(col0, min(col1, len(ws.rows[r]))):
            if ws.rows[r][c] is not None:
                ws.write(r, c, None)
    return format_range(ws.title, row0, col0, row1, col1)
