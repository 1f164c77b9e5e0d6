"""Reading one worksheet part: its cells as text, its hyperlinks and its merged ranges.

The part is streamed from the zip (`iterparse`, one `<row>` at a time, each dropped once
read) and its data rows go to a `SpilledRows` on disk, so a workbook of hundreds of
thousands of rows is read in one pass without a DOM of it, its bytes, or a list of its rows.
Element names are matched without their namespace: transitional and strict SpreadsheetML,
with or without a prefix, read alike.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO
from xml.etree import ElementTree

from openpyxl.formula.translate import Translator, TranslatorError
from openpyxl.utils.cell import get_column_letter, range_boundaries

from sheets_integration.errors import BadSheet
from sheets_integration.spilled_rows import SpilledRows
from sheets_integration.xlsx_cells import (
    hyperlink_target,
    iso_text,
    serial_text,
    unescape_xstring,
)
from sheets_integration.xlsx_markup import column_index
from sheets_integration.xlsx_package import local
from sheets_integration.xlsx_strings import string_text
from sheets_integration.xlsx_styles import Styles

log = logging.getLogger(__name__)

_HINT = "open it in Excel or LibreOffice and save it again as .xlsx"
# A range this many rows tall or more is checked one by one rather than indexed by row.
_TALL = 1024


@dataclass(frozen=True)
class CellRange:
    """A rectangle of cells, 1-based and inclusive, with its A1 text ("C2:F2")."""

    min_col: int
    min_row: int
    max_col: int
    max_row: int
    text: str

    @classmethod
    def parse(cls, ref: str) -> CellRange | None:
        """The range `ref` names ("C2:F2", "B7"), or None when it names no bounded range."""
        try:
            bounds: tuple[int | None, ...] = range_boundaries(ref)
        except (ValueError, TypeError):
            return None
        numbers = [number for number in bounds if number is not None]
        if len(numbers) != 4:
            return None
        min_col, min_row, max_col, max_row = numbers
        return CellRange(min_col, min_row, max_col, max_row, ref.replace("$", ""))

    def covers(self, row: int, column: int) -> bool:
        """True when the range holds the cell at sheet `row`, `column` (1-based)."""
        return self.min_row <= row <= self.max_row and self.min_col <= column <= self.max_col


class MergedRanges(Mapping[tuple[int, int], str]):
    """The cells inside merged ranges other than each range's top-left cell.

    As a mapping (what `Table.merged` holds): (data row index, column index) -> "C2:F2",
    data row 0 being sheet row 2. `range_at` answers the same for any sheet row.
    """

    def __init__(self, ranges: Sequence[CellRange]) -> None:
        self.ranges = list(ranges)
        self._by_row: dict[int, list[CellRange]] = {}
        self._tall: list[CellRange] = []
        for cells in self.ranges:
            if cells.max_row - cells.min_row >= _TALL:
                self._tall.append(cells)
                continue
            for row in range(cells.min_row, cells.max_row + 1):
                self._by_row.setdefault(row, []).append(cells)

    def range_at(self, row: int, column: int) -> CellRange | None:
        """The merged range holding sheet cell (`row`, `column`), 1-based, unless it is the
        range's top-left cell (the one cell of a merge that holds its value)."""
        for cells in itertools.chain(self._by_row.get(row, []), self._tall):
            if cells.covers(row, column) and (row, column) != (cells.min_row, cells.min_col):
                return cells
        return None

    def in_row(self, row: int) -> Iterator[CellRange]:
        """The ranges that cover sheet row `row` (1-based)."""
        yield from self._by_row.get(row, [])
        yield from (cells for cells in self._tall if cells.min_row <= row <= cells.max_row)

    def __getitem__(self, key: tuple[int, int]) -> str:
        found = self.range_at(key[0] + 2, key[1] + 1)
        if found is None:
            raise KeyError(key)
        return found.text

    def __contains__(self, key: object) -> bool:
        if not (isinstance(key, tuple) and len(key) == 2):
            return False
        row, column = key
        return (
            isinstance(row, int)
            and isinstance(column, int)
            and bool(self.range_at(row + 2, column + 1))
        )

    def __iter__(self) -> Iterator[tuple[int, int]]:
        seen: set[tuple[int, int]] = set()
        for cells in self.ranges:
            for row in range(max(cells.min_row, 2), cells.max_row + 1):
                for column in range(cells.min_col, cells.max_col + 1):
                    key = (row - 2, column - 1)
                    if (row, column) != (cells.min_row, cells.min_col) and key not in seen:
                        seen.add(key)
                        yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class WorksheetContent:
    """A worksheet read as text: `rows[0]` is sheet row 1 (the header).

    `links` and `merged` are keyed as `Table` keys them: (data row index, column index),
    data row 0 being sheet row 2.
    """

    rows: list[list[str]]
    #: Streamed (`stream_worksheet`): `rows` is the header alone, `data` the data rows.
    data: Sequence[list[str]] = ()
    links: dict[tuple[int, int], str] = field(default_factory=dict)
    merged: MergedRanges = field(default_factory=lambda: MergedRanges(()))


class _Reader:
    """One pass over a worksheet part, collecting what `WorksheetContent` holds."""

    def __init__(
        self, strings: Sequence[str], styles: Styles, date1904: bool, targets: Mapping[str, str]
    ) -> None:
        self.strings, self.styles, self.date1904, self.targets = strings, styles, date1904, targets
        self.links: dict[tuple[int, int], str] = {}
        self.merges: list[CellRange] = []
        self.hyperlinks: list[tuple[str, str]] = []
        self.shared: dict[str, tuple[str, str]] = {}
        self._columns: dict[str, int] = {}
        self.tags: dict[str, str] = {}

    def read(self, data: bytes | IO[bytes]) -> None:
        source = _Rejoined(data if isinstance(data, bytes) else data.read(65536), data)
        namespace = _root_namespace(source.first)
        row_tag, merge_tag, link_tag = (namespace + n for n in ("row", "mergeCell", "hyperlink"))
        self.tags = {namespace + n: n for n in ("c", "v", "f", "is")}
        row_number = 0
        for _, element in ElementTree.iterparse(source, events=("end",)):
            tag = element.tag
            if tag == row_tag:
                number = element.get("r")
                row_number = int(number) if number else row_number + 1
                self._row(element, row_number)
                element.clear()
            elif tag == merge_tag:
                cells = CellRange.parse(element.get("ref", ""))
                if cells is not None:
                    self.merges.append(cells)
            elif tag == link_tag:
                rel_id = next((v for k, v in element.attrib.items() if local(k) == "id"), "")
                target = self.targets.get(rel_id)
                if target is not None:
                    location = element.get("location")
                    self.hyperlinks.append(
                        (element.get("ref", ""), target + ("#" + location if location else ""))
                    )

    def _row(self, row: ElementTree.Element, number: int) -> None:
        values: list[str] = []
        column = 0
        tags = self.tags
        for cell in row:
            if tags.get(cell.tag) != "c":
                continue
            ref = cell.get("r")
            column = self._column(ref) if ref else column + 1
            text = self._cell(cell, ref, number, column)
            if text:
                if len(values) < column:
                    values.extend([""] * (column - len(values)))
                values[column - 1] = text
        self._store(number, values)

    def _store(self, number: int, values: list[str]) -> None:
        raise NotImplementedError  # where the rows go: `_SpillingReader`

    def _cell(self, cell: ElementTree.Element, ref: str | None, row: int, column: int) -> str:
        kind = cell.get("t", "n")
        value: str | None = None
        formula: ElementTree.Element | None = None
        inline: ElementTree.Element | None = None
        tags = self.tags
        for child in cell:
            name = tags.get(child.tag)
            if name == "v":
                value = child.text or ""
            elif name == "f":
                formula = child
            elif name == "is":
                inline = child
        if formula is not None:
            text = self._formula(formula, ref or f"{get_column_letter(column)}{row}")
            if text is not None:
                target = hyperlink_target(text)
                if target is None:
                    return "=" + text
                if row > 1:
                    self.links[(row - 2, column - 1)] = target
                if not value:  # no label cached (openpyxl writes an empty <v/>)
                    return "=" + text
        if kind == "s":
            index = int(value or "-1")
            return self.strings[index] if 0 <= index < len(self.strings) else ""
        if inline is not None and kind == "inlineStr":
            return unescape_xstring(string_text(inline))
        if value is None:
            return ""
        if kind == "n":
            xf = int(cell.get("s") or 0)
            styles = self.styles
            return serial_text(value, styles.kind(xf), styles.number_format(xf), self.date1904)
        if kind == "b":
            return "TRUE" if value.strip() in ("1", "true") else "FALSE"
        if kind == "d":
            return iso_text(value, self.styles.number_format(int(cell.get("s") or 0)))
        return unescape_xstring(value) if kind in ("str", "inlineStr") else value

    def _formula(self, formula: ElementTree.Element, ref: str) -> str | None:
        """The formula's text without "="; a shared formula's cells get the master's, moved."""
        text = formula.text
        if formula.get("t") != "shared":
            return text if text is not None else None
        group = formula.get("si", "")
        if text:
            self.shared[group] = (text, ref)
            return text
        master = self.shared.get(group)
        if master is None:
            return None
        try:
            moved = Translator("=" + master[0], origin=master[1]).translate_formula(ref)
            return str(moved)[1:]
        except (TranslatorError, ValueError) as exc:
            log.debug("cannot move shared formula %r to %s: %s", master[0], ref, exc)
            return master[0]

    def _column(self, ref: str) -> int:
        letters = ref.rstrip("0123456789")
        found = self._columns.get(letters)
        if found is None:
            found = self._columns[letters] = column_index(letters)
        return found


class _Rejoined:
    """A stream whose first bytes were read already (to find the root's namespace)."""

    def __init__(self, first: bytes, rest: bytes | IO[bytes]) -> None:
        self.first = first
        self._first: bytes | None = first
        self._rest = None if isinstance(rest, bytes) else rest

    def read(self, size: int = -1) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            if first:
                return first
        return b"" if self._rest is None else self._rest.read(size)


def _root_namespace(data: bytes) -> str:
    """ "{uri}" of the part's root element (its children share it), or "" without one."""
    try:
        for _, element in ElementTree.iterparse(io.BytesIO(data), events=("start",)):
            tag = element.tag
            return tag[: tag.index("}") + 1] if tag.startswith("{") else ""
    except ElementTree.ParseError:
        pass  # the first bytes end mid-element; the root came before that
    return ""


class _SpillingReader(_Reader):
    """A `_Reader` whose data rows go to a `SpilledRows` as they are read, in sheet order.

    The merged ranges are known before the pass (from the part's tail), so each row is
    blanked inside them as it arrives; empty rows are held back as a count, so trailing
    ones are never stored.
    """

    def __init__(
        self,
        strings: Sequence[str],
        styles: Styles,
        date1904: bool,
        targets: Mapping[str, str],
        merged: MergedRanges,
    ) -> None:
        super().__init__(strings, styles, date1904, targets)
        self.merged = merged
        self.header: list[str] = []
        self.spilled = SpilledRows()
        self._last = 1  # the sheet row stored last (row 1: the header)
        self._empty = 0  # empty rows read and not stored yet
        self.width = 0

    def _store(self, number: int, values: list[str]) -> None:
        for merge in self.merged.in_row(number):
            first = merge.min_col + 1 if number == merge.min_row else merge.min_col
            for column in range(first, min(merge.max_col, len(values)) + 1):
                values[column - 1] = ""
        while values and values[-1] == "":
            values.pop()
        if number == 1:
            self.header = values
            return
        if number <= self._last:
            raise ValueError(f"row {number} comes after row {self._last}")
        self._empty += number - self._last - 1
        self._last = number
        if not values:
            self._empty += 1
            return
        for _ in range(self._empty):
            self.spilled.append([])
        self._empty = 0
        self.spilled.append(values)
        self.width = max(self.width, len(values))

    def streamed(self) -> WorksheetContent:
        width = max(self.width, len(self.header))
        last = len(self.spilled) + 1
        for ref, target in self.hyperlinks:
            cells = CellRange.parse(ref)
            if cells is None:
                continue
            for row in range(max(cells.min_row, 2), min(cells.max_row, last) + 1):
                for column in range(cells.min_col, min(cells.max_col, width) + 1):
                    self.links.setdefault((row - 2, column - 1), target)
        return WorksheetContent([self.header], self.spilled, self.links, self.merged)


def stream_worksheet(
    source: IO[bytes],
    *,
    strings: Sequence[str],
    styles: Styles,
    date1904: bool,
    targets: Mapping[str, str],
    merged: MergedRanges,
    sheet: str,
) -> WorksheetContent:
    """`read_worksheet` over a stream of the part, its data rows spilled (`SpilledRows`):
    `rows` then holds the header alone and `data` the data rows."""
    reader = _SpillingReader(strings, styles, date1904, targets, merged)
    try:
        reader.read(source)
    except ElementTree.ParseError as exc:
        raise BadSheet(sheet, f"the worksheet is not well-formed XML ({exc})", _HINT) from exc
    except (ValueError, IndexError) as exc:
        raise BadSheet(sheet, f"the worksheet holds a malformed cell ({exc})", _HINT) from exc
    return reader.streamed()
