"""`WorksheetStream`: a worksheet part read as its head, its rows one at a time, and its tail.

A worksheet of 500,000 rows is a part of a few hundred MB once inflated. Editing it needs
only one row at a time: the part is read from the zip in blocks, each `<row>` element is
handed over whole (with the bytes before it), and only the current block is held. What
follows `</sheetData>` (merges, hyperlinks, conditional formats) is the tail; `tail_of`
reads it in one cheap pass (the bytes are inflated and searched, nothing is parsed), so a
writer knows the merged ranges before it meets the first row.

`cell_text` reads one raw `<c>` element as `xlsx_worksheet` reads it, for the few cells a
streamed edit looks at (the Job ID, an input to compare, an output cell to fill).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import IO

from sheets_integration.errors import BadSheet
from sheets_integration.xlsx_cells import (
    hyperlink_target,
    iso_text,
    serial_text,
    unescape_xstring,
)
from sheets_integration.xlsx_markup import CELL, PREFIX, RawCell, attr, column_index, unxml
from sheets_integration.xlsx_styles import Styles

#: Inflated bytes read from the part at once.
_BLOCK = 1 << 20
_HINT = "open it in Excel or LibreOffice and save it again as .xlsx"
_SHEET_DATA = re.compile(rb"<(" + PREFIX + rb")sheetData\b[^>]*?(/?)>")
_SHEET_DATA_END = re.compile(rb"</" + PREFIX + rb"sheetData\s*>")
_ROW = re.compile(
    rb"<(" + PREFIX + rb")row\b"
    rb"""([^>]*?\sr\s*=\s*["']\s*(\d+)\s*["'][^>]*?|[^>]*?)(/?)>"""
)
_ROW_END = re.compile(rb"</" + PREFIX + rb"row\s*>")
_MERGE = re.compile(rb"<" + PREFIX + rb"mergeCell\b([^>]*?)/?>")


class WorksheetStream:
    """One pass over a worksheet part: `head`, then `rows()`, then `tail`.

    `head` is the part up to and including the `<sheetData>` start tag (an empty
    `<sheetData/>` is given as an opened one, and its close tag starts the tail); `tail`,
    set once `rows()` is exhausted, is everything from `</sheetData>` on.
    """

    def __init__(self, source: IO[bytes], sheet: str) -> None:
        self._source, self.sheet = source, sheet
        self._buffer = b""
        self._position = 0
        self.prefix = ""
        self.tail = b""
        self._gap = b""
        self.head = self._read_head()

    def _more(self) -> bool:
        """Read the next block (dropping what was consumed); False at the part's end."""
        block = self._source.read(_BLOCK)
        if not block:
            return False
        self._buffer = self._buffer[self._position :] + block
        self._position = 0
        return True

    def _read_head(self) -> bytes:
        while True:
            found = _SHEET_DATA.search(self._buffer)
            if found is not None:
                break
            if not self._more():
                raise BadSheet(self.sheet, "the worksheet has no <sheetData>", _HINT)
        self.prefix = found.group(1).decode()
        if found.group(2):  # <sheetData/>: no rows; the close tag starts the tail
            close = f"</{self.prefix}sheetData>".encode()
            self._buffer = self._buffer[: found.end()] + close + self._buffer[found.end() :]
            self._position = found.end()
            return self._buffer[: found.start()] + found.group(0)[:-2].rstrip() + b">"
        self._position = found.end()
        return self._buffer[: found.end()]

    def rows(self) -> Iterator[tuple[bytes, bytes, int]]:
        """(the bytes before the row, the whole `<row>` element, its sheet row number)."""
        implicit = 0
        while True:
            buffer, position = self._buffer, self._position
            row = _ROW.search(buffer, position)
            if row is not None and b"sheetData" in buffer[position : row.start()]:
                row = None  # a `<row` after the close tag: not a row of the sheet data
            if row is None:
                end = _SHEET_DATA_END.search(buffer, position)
                if end is not None:
                    self._finish(end.start())
                    return
                if not self._more():
                    raise BadSheet(self.sheet, "the worksheet's <sheetData> is not closed", _HINT)
                continue
            if row.group(4):
                row_end = row.end()
            else:
                closing = _ROW_END.search(buffer, row.end())
                if closing is None:
                    if not self._more():
                        raise BadSheet(self.sheet, "the worksheet's last row is unclosed", _HINT)
                    continue
                row_end = closing.end()
            number = int(row.group(3)) if row.group(3) else implicit + 1
            implicit = number
            self._position = row_end
            yield buffer[position : row.start()], buffer[row.start() : row_end], number

    def _finish(self, at: int) -> None:
        pieces = [self._buffer[at:]]
        while block := self._source.read(_BLOCK):
            pieces.append(block)
        self.tail = b"".join(pieces)
        self._gap = self._buffer[self._position : at]
        self._buffer = b""

    @property
    def gap(self) -> bytes:
        """The bytes between the last row and `</sheetData>` (once `rows()` is exhausted)."""
        return self._gap


def tail_of(source: IO[bytes], sheet: str) -> bytes:
    """What follows the `</sheetData>` of the worksheet part `source` (read to its end)."""
    carry = b""
    overlap = 64  # longer than any spelling of the close tag
    while block := source.read(_BLOCK):
        data = carry + block
        found = _SHEET_DATA_END.search(data)
        if found is not None:
            pieces = [data[found.start() :]]
            while more := source.read(_BLOCK):
                pieces.append(more)
            return b"".join(pieces)
        carry = data[-overlap:]
    if _SHEET_DATA.search(carry) is not None:
        return b""  # <sheetData/>, in the last bytes read
    raise BadSheet(sheet, "the worksheet's <sheetData> is not closed", _HINT)


def merged_refs(tail: bytes) -> list[str]:
    """The `ref` of each `<mergeCell>` in a worksheet's tail."""
    return [ref for m in _MERGE.finditer(tail) if (ref := attr(m.group(1), b"ref"))]


def row_cells(raw: bytes) -> dict[int, RawCell]:
    """Every `<c>` of a whole `<row>` element by its 1-based column."""
    cells: dict[int, RawCell] = {}
    column = 0
    for found in CELL.finditer(raw):
        ref = attr(found.group(2), b"r")
        column = column_index(ref) if ref else column + 1
        cells[column] = RawCell(found.group(2), found.group(3) or b"")
    return cells


def find_cell(raw: bytes, ref: bytes, column: int) -> RawCell | None:
    """The `<c>` of row `raw` at `ref` (b"C12", column 3): found by its reference when the
    row names one, else by reading the row's cells; None when the row has no such cell."""
    for quote in (b'"', b"'"):
        hit = raw.find(b"r=" + quote + ref + quote)
        start = raw.rfind(b"<", 0, hit) if hit > 0 else -1
        found = CELL.match(raw, start) if start >= 0 else None
        if found is not None and attr(found.group(2), b"r") == ref.decode():
            return RawCell(found.group(2), found.group(3) or b"")
    return row_cells(raw).get(column)


def cell_text(cell: RawCell, strings: Sequence[str], styles: Styles, date1904: bool) -> str:
    """The cell's text as `xlsx_worksheet` reads it (a formula as its text, except a
    `=HYPERLINK` with a cached label, which reads as the label)."""
    kind = cell.kind
    value = cell.value
    formula = cell.formula
    if formula is not None:
        text = unxml(formula.group(2) or b"")
        if hyperlink_target(text) is None or not value:
            return "=" + text
    if kind == "s":
        index = int(value or "-1")
        return strings[index] if 0 <= index < len(strings) else ""
    if kind == "inlineStr":
        return unescape_xstring(cell.inline_text) if cell.has_inline else (value or "")
    if value is None:
        return ""
    if kind == "n":
        xf = cell.style
        return serial_text(value, styles.kind(xf), styles.number_format(xf), date1904)
    if kind == "b":
        return "TRUE" if value.strip() in ("1", "true") else "FALSE"
    if kind == "d":
        return iso_text(value, styles.number_format(cell.style))
    return unescape_xstring(value) if kind == "str" else value
