"""Editing a worksheet part in place: the `<c>` elements of the cells written, nothing else.

`splice` streams over the `<row>` elements of `<sheetData>` (a regular expression over the
bytes, no DOM) and rewrites only the rows that receive a value; every other byte of the
part, including the rows before and after, is copied unchanged. A written cell keeps its
own style (a new one takes its row's or column's, or in the header row its left
neighbour's), gains a quote prefix when its text looks like a formula, and loses any
formula it held; when that formula was the master of a shared formula, the cells sharing
it are given their own copy, so they keep computing what they did.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from openpyxl.formula.translate import Translator, TranslatorError
from openpyxl.utils.cell import get_column_letter

from sheets_integration.errors import BadSheet
from sheets_integration.safety import is_formula_like
from sheets_integration.sheet import CellValue, cell_text
from sheets_integration.xlsx_cells import cell_xml, numeric, unescape_xstring, written_text
from sheets_integration.xlsx_markup import (
    CELL,
    FORMULA,
    PREFIX,
    RawCell,
    attr,
    column_index,
    set_attr,
    unxml,
)
from sheets_integration.xlsx_styles import Styles
from sheets_integration.xlsx_worksheet import CellRange

_SHEET_DATA = re.compile(rb"<(" + PREFIX + rb")sheetData\b[^>]*?(/?)>")
_SHEET_DATA_END = re.compile(rb"</" + PREFIX + rb"sheetData\s*>")
# A row's start tag: prefix, attributes, its number when it names one, "/" when empty.
_ROW = re.compile(
    rb"<(" + PREFIX + rb")row\b"
    rb"""([^>]*?\sr\s*=\s*["']\s*(\d+)\s*["'][^>]*?|[^>]*?)(/?)>"""
)
_ROW_END = re.compile(rb"</" + PREFIX + rb"row\s*>")
_DIMENSION = re.compile(
    rb"(<" + PREFIX + rb"""dimension\b[^>]*?\sref\s*=\s*)(?:"([^"]*)"|'([^']*)')"""
)
_COL = re.compile(rb"<" + PREFIX + rb"col\b([^>]*?)/?>")
_HINT = "open it in Excel or LibreOffice and save it again as .xlsx"


@dataclass
class Spliced:
    """A spliced worksheet part: its bytes, whether anything changed, formulas overwritten."""

    data: bytes
    changed: bool = False
    #: Cells ("K2") whose formula a write replaced: the calculation chain must forget them.
    removed_formulas: set[str] = field(default_factory=set)


def splice(
    data: bytes,
    writes: Mapping[int, Mapping[int, CellValue]],
    *,
    styles: Styles,
    strings: Sequence[str],
    sheet: str,
) -> Spliced:
    """`data` with `writes` ({sheet row: {column: value}}, 1-based) made; see the module doc."""
    return _Splicer(data, styles, strings, sheet).run(writes)


class _Splicer:
    def __init__(self, data: bytes, styles: Styles, strings: Sequence[str], sheet: str) -> None:
        self.data, self.styles, self.strings, self.sheet = data, styles, strings, sheet
        self.prefix = ""
        self.column_styles: list[tuple[int, int, int]] = []
        self.result = Spliced(data)
        # Shared formulas whose master a write replaced: si -> (formula, master cell, range);
        # rows up to `unshare_until` may hold cells that shared them.
        self.unshare: dict[bytes, tuple[str, str, CellRange]] = {}
        self.unshare_until = 0
        self.head_end = 0
        self.bounds: list[int] = []  # min col, min row, max col, max row of non-empty writes

    def run(self, writes: Mapping[int, Mapping[int, CellValue]]) -> Spliced:
        data = self.data
        found = _SHEET_DATA.search(data)
        if found is None:
            raise BadSheet(self.sheet, "the worksheet has no <sheetData>", _HINT)
        self.prefix = found.group(1).decode()
        self.head_end = found.start()
        self.column_styles = _column_styles(data[: found.start()])
        if found.group(2):  # <sheetData/>: opened and closed around the new rows
            head = data[: found.start()] + found.group(0)[:-2].rstrip() + b">"
            content = close_start = found.end()
            tail = f"</{self.prefix}sheetData>".encode() + data[found.end() :]
        else:
            end = _SHEET_DATA_END.search(data, found.end())
            if end is None:
                raise BadSheet(self.sheet, "the worksheet's <sheetData> is not closed", _HINT)
            head, content, close_start = data[: found.end()], found.end(), end.start()
            tail = data[end.start() :]
        pending = sorted(number for number, cells in writes.items() if cells)
        pieces = [head]
        position, index, implicit = content, 0, 0
        cursor = content
        while True:
            if index < len(pending) and implicit >= self.unshare_until:
                cursor = self._skip_to(pending[index], cursor, close_start)
            row = _ROW.search(data, cursor, close_start)
            if row is None:
                break
            cursor = row.end()
            number = int(row.group(3)) if row.group(3) else implicit + 1
            implicit = number
            if index >= len(pending) and number > self.unshare_until:
                break
            while index < len(pending) and pending[index] < number:
                pieces.append(data[position : row.start()])
                position = row.start()
                pieces.append(self._new_row(pending[index], writes[pending[index]]))
                index += 1
            here: Mapping[int, CellValue] = {}
            if index < len(pending) and pending[index] == number:
                here, index = writes[number], index + 1
            if not (here or not row.group(3) or number <= self.unshare_until):
                continue
            if row.group(4):
                body, row_end = b"", row.end()
            else:
                end_tag = _ROW_END.search(data, row.end(), close_start)
                if end_tag is None:
                    raise BadSheet(self.sheet, f"row {number} of the worksheet is unclosed", _HINT)
                body, row_end = data[row.end() : end_tag.start()], end_tag.end()
            pieces.append(data[position : row.start()])
            pieces.append(self._rewrite_row(row, body, number, here))
            position = cursor = row_end
        pieces.append(data[position:close_start])
        pieces.extend(self._new_row(number, writes[number]) for number in pending[index:])
        pieces.append(tail)
        if self.result.changed:
            self.result.data = self._with_dimension(b"".join(pieces))
        return self.result

    # --- rows ---------------------------------------------------------------------------

    def _skip_to(self, number: int, cursor: int, end: int) -> int:
        """Where to look for the next row: at row `number` when a quick search finds its
        start tag (rows before it need nothing), else at `cursor` (scan row by row)."""
        hit = self.data.find(b' r="%d"' % number, cursor, end)
        if hit < 0:
            return cursor
        start = self.data.rfind(b"<", cursor, hit)
        row = _ROW.match(self.data, start) if start >= 0 else None
        if row is None or row.end() <= hit or row.group(3) != b"%d" % number:
            return cursor
        return start

    def _new_row(self, number: int, writes: Mapping[int, CellValue]) -> bytes:
        cells = [
            self._cell_for(number, column, value, None, self._default_style(number, column, {}))
            for column, value in sorted(writes.items())
        ]
        cells = [cell for cell in cells if cell]
        if not cells:
            return b""
        p = self.prefix
        return f'<{p}row r="{number}">'.encode() + b"".join(cells) + f"</{p}row>".encode()

    def _rewrite_row(
        self, row: re.Match[bytes], body: bytes, number: int, writes: Mapping[int, CellValue]
    ) -> bytes:
        attrs = row.group(2)
        cells: dict[int, bytes] = {}
        column = 0
        lead, tail = body, b""
        matches = list(CELL.finditer(body))
        if matches:
            lead, tail = body[: matches[0].start()], body[matches[-1].end() :]
        for cell in matches:
            ref = _ref(cell.group(2))
            raw = cell.group(0)
            column = _column_of(ref) if ref else column + 1
            if not ref:  # explicit from now on: a cell inserted before it must not move it
                at = cell.end(1) + 1 - cell.start()
                raw = raw[:at] + f' r="{get_column_letter(column)}{number}"'.encode() + raw[at:]
            cells[column] = raw
        row_style = _row_style(attrs)
        for column, value in sorted(writes.items()):
            existing = cells.get(column)
            if existing is not None:
                style = RawCell.of(existing).style
            else:
                style = self._default_style(number, column, cells, row_style)
            new = self._cell_for(number, column, value, existing, style)
            if new:
                cells[column] = new
            else:
                cells.pop(column, None)
        if self.unshare:
            for column in sorted(set(cells) - set(writes)):
                cells[column] = self._unshared(
                    cells[column], f"{get_column_letter(column)}{number}"
                )
        if not attr(attrs, b"r"):
            attrs = set_attr(attrs, b"r", str(number).encode())
        attrs = _with_spans(attrs, cells)
        p = row.group(1)
        start = b"<" + p + b"row" + attrs + b">"
        ordered = b"".join(cells[c] for c in sorted(cells))
        return start + lead + ordered + tail + b"</" + p + b"row>"

    def _default_style(
        self,
        number: int,
        column: int,
        cells: Mapping[int, bytes],
        row_style: int | None = None,
    ) -> int:
        """The style a new cell takes: its row's, else its column's, else (header) its left
        neighbour's, as a spreadsheet program does when a user types there."""
        if row_style is not None:
            return row_style
        for first, last, style in self.column_styles:
            if first <= column <= last:
                return style
        if number == 1:
            left = [c for c in cells if c < column]
            if left:
                return RawCell.of(cells[max(left)]).style
        return 0

    # --- cells --------------------------------------------------------------------------

    def _cell_for(
        self, number: int, column: int, value: CellValue, existing: bytes | None, style: int
    ) -> bytes:
        """The new XML of the cell (b"" to leave it out), or `existing` when it already holds
        `value` exactly; notes what the write replaced."""
        if numeric(value):
            style = self.styles.variant(style, quoted=False)
        elif isinstance(value, str) and is_formula_like(written_text(value)):
            style = self.styles.variant(style, quoted=True)
        if existing is not None and self._holds(existing, value, style):
            return existing
        ref = f"{get_column_letter(column)}{number}"
        if existing is not None:
            self._forget_formula(existing, ref)
        new = cell_xml(self.prefix, ref, style, value).encode()
        if new or existing is not None:
            self.result.changed = True
        if new and value != "":
            self.bounds = _union(self.bounds, column, number)
        return new

    def _holds(self, raw: bytes, value: CellValue, style: int) -> bool:
        """True when the cell `raw` already is what writing `value` in `style` would make."""
        cell = RawCell.of(raw)
        if cell.style != style or cell.formula is not None:
            return False
        kind, stored = cell.kind, cell.value
        if value == "":
            return stored is None and not cell.has_inline
        if numeric(value):
            try:
                return kind == "n" and stored is not None and float(stored) == float(value)
            except ValueError:
                return False
        text = written_text(value) if isinstance(value, str) else cell_text(value)
        if kind == "inlineStr":
            return unescape_xstring(cell.inline_text) == text
        if kind == "s" and stored is not None and stored.strip().isdigit():
            index = int(stored)
            return index < len(self.strings) and self.strings[index] == text
        return kind == "str" and stored is not None and unescape_xstring(stored) == text

    def _forget_formula(self, raw: bytes, ref: str) -> None:
        formula = FORMULA.search(raw)
        if formula is None:
            return
        self.result.removed_formulas.add(ref)
        attrs = formula.group(1)
        shared_range = attr(attrs, b"ref")
        if attr(attrs, b"t") == "shared" and shared_range and formula.group(2):
            cells = CellRange.parse(shared_range)
            group = (attr(attrs, b"si") or "").encode()
            if cells is not None:
                self.unshare[group] = (unxml(formula.group(2)), ref, cells)
                self.unshare_until = max(self.unshare_until, cells.max_row)

    def _unshared(self, raw: bytes, ref: str) -> bytes:
        """`raw` with its own copy of a shared formula whose master was overwritten."""
        if not self.unshare:
            return raw
        formula = FORMULA.search(raw)
        if formula is None or formula.group(2) or attr(formula.group(1), b"t") != "shared":
            return raw
        master = self.unshare.get((attr(formula.group(1), b"si") or "").encode())
        if master is None:
            return raw
        text, origin, _ = master
        try:
            moved = str(Translator("=" + text, origin=origin).translate_formula(ref))[1:]
        except (TranslatorError, ValueError):
            moved = text
        p = self.prefix
        own = f"<{p}f>{escape(moved)}</{p}f>".encode()
        self.result.changed = True
        return raw[: formula.start()] + own + raw[formula.end() :]

    def _with_dimension(self, data: bytes) -> bytes:
        found = _DIMENSION.search(data, 0, self.head_end)
        if found is None or not self.bounds:
            return data
        old = (found.group(2) or found.group(3) or b"").decode()
        cells = CellRange.parse(old)
        bounds = self.bounds
        if cells is not None:
            bounds = _union(bounds, cells.min_col, cells.min_row)
            bounds = _union(bounds, cells.max_col, cells.max_row)
        min_col, min_row, max_col, max_row = bounds
        ref = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col)}{max_row}"
        if ref == old:
            return data
        return data[: found.start()] + found.group(1) + f'"{ref}"'.encode() + data[found.end() :]


# --- helpers --------------------------------------------------------------------------------

# A cell's reference as every writer spells it; `attr` (the general reader) otherwise.
_PLAIN_REF = re.compile(rb'\sr="([A-Z]{1,3}[0-9]+)"')


def _ref(attrs: bytes) -> str | None:
    """The `r` of a cell's attributes: asked for every cell of every row a write touches."""
    found = _PLAIN_REF.search(attrs) if b"'" not in attrs else None
    return found.group(1).decode() if found is not None else attr(attrs, b"r")


@functools.lru_cache(maxsize=4096)
def _letters_index(letters: str) -> int:
    return column_index(letters)


def _column_of(ref: str) -> int:
    """`column_index`, remembered per column letters (a sheet has few columns)."""
    return _letters_index(ref.rstrip("0123456789$"))


def _union(bounds: list[int], column: int, row: int) -> list[int]:
    if not bounds:
        return [column, row, column, row]
    low_column, low_row, high_column, high_row = bounds
    return [
        min(low_column, column),
        min(low_row, row),
        max(high_column, column),
        max(high_row, row),
    ]


def _row_style(attrs: bytes) -> int | None:
    if (attr(attrs, b"customFormat") or "").lower() not in ("1", "true"):
        return None
    style = attr(attrs, b"s")
    return int(style) if style and style.isdigit() else None


def _column_styles(head: bytes) -> list[tuple[int, int, int]]:
    found = []
    for col in _COL.finditer(head):
        attrs = col.group(1)
        first, last, style = (attr(attrs, name) for name in (b"min", b"max", b"style"))
        if first and last and style and first.isdigit() and last.isdigit() and style.isdigit():
            found.append((int(first), int(last), int(style)))
    return found


def _with_spans(attrs: bytes, cells: Mapping[int, bytes]) -> bytes:
    """Row attributes whose optional `spans` hint still covers every cell of the row."""
    spans = attr(attrs, b"spans")
    if not spans or not cells:
        return attrs
    try:
        ranges = [tuple(int(n) for n in part.split(":")) for part in spans.split()]
    except ValueError:
        return attrs
    if all(any(r[0] <= c <= r[-1] for r in ranges) for c in cells):
        return attrs
    low = min(min(cells), *(r[0] for r in ranges))
    high = max(max(cells), *(r[-1] for r in ranges))
    return set_attr(attrs, b"spans", f"{low}:{high}".encode())


class RowSplicer:
    """`splice` for a worksheet streamed row by row (`xlsx_stream`): the same cell edits,
    for rows handed over in sheet order, so the part is never held whole.

    `head` is the part up to and including `<sheetData>`; `row` returns a row's new bytes;
    `head_after` the head with its dimension grown to cover the cells written.
    """

    def __init__(
        self, head: bytes, prefix: str, styles: Styles, strings: Sequence[str], sheet: str
    ) -> None:
        self._splicer = _Splicer(head, styles, strings, sheet)
        self._splicer.prefix = prefix
        self._splicer.head_end = len(head)
        self._splicer.column_styles = _column_styles(head)

    @property
    def result(self) -> Spliced:
        """Whether anything changed so far, and the formulas the writes replaced."""
        return self._splicer.result

    def pending(self, number: int) -> bool:
        """True when row `number` must go through `row` although nothing is written in it
        (it may share a formula whose master a write replaced)."""
        return bool(self._splicer.unshare) and number <= self._splicer.unshare_until

    def row(self, raw: bytes, number: int, writes: Mapping[int, CellValue]) -> bytes:
        """The row `raw` (one whole `<row>` element, sheet row `number`) with `writes`
        ({column: value}, 1-based) made."""
        start = _ROW.match(raw)
        if start is None:
            raise BadSheet(
                self._splicer.sheet, f"row {number} of the worksheet is malformed", _HINT
            )
        body = b"" if start.group(4) else raw[start.end() : raw.rfind(b"</")]
        return self._splicer._rewrite_row(start, body, number, writes)

    def new_row(self, number: int, writes: Mapping[int, CellValue]) -> bytes:
        """A new `<row>` element for sheet row `number` (absent from the part) with `writes`."""
        return self._splicer._new_row(number, writes)

    def head_after(self, head: bytes) -> bytes:
        """`head` with its `<dimension>` covering every cell written."""
        return self._splicer._with_dimension(head)
