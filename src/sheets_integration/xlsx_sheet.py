"""`XlsxSheet`: one worksheet of a local .xlsx workbook as a `Sheet`.

Reading returns what the user sees as closely as a plain reader can: text as stored
("00123" stays "00123"), formulas as their text ("=SUM(A1:A3)", never a cached result),
whole numbers without ".0", numbers in simple formats ("0.00", "#,##0", "0%", "00000")
formatted by them, dates and times in ISO 8601, booleans as TRUE/FALSE.

Writing stores every value as a string cell (never a formula, number or error code) and
marks formula-like strings with Excel's quote prefix, so editing the cell later keeps it
text. The workbook is re-read and saved whole through openpyxl: other worksheets, styles,
comments, merged cells and data validation survive, but openpyxl drops what it does not
read (charts, images, shapes) and cached formula results (Excel recomputes them on open).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import zipfile
from collections.abc import Sequence
from xml.etree.ElementTree import ParseError

import openpyxl
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.formula import ArrayFormula
from openpyxl.worksheet.worksheet import Worksheet

from sheets_integration.errors import BadSheet, SheetNotFound
from sheets_integration.file_sheet import FileSheet
from sheets_integration.safety import CellWrite, clip, is_formula_like
from sheets_integration.sheet import Table, normalize_header

log = logging.getLogger(__name__)


# Characters XML 1.0 cannot hold; openpyxl refuses them, so written values lose them.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# A "simple" number format: digits placeholders, optional thousands, decimals, percent.
_SIMPLE_FORMAT = re.compile(r"(?P<int>[#0,]*)(?:\.(?P<frac>0+))?(?P<pct>%?)")
_GENERAL = frozenset({"", "general", "@"})
_LOAD_ERRORS = (
    zipfile.BadZipFile,
    InvalidFileException,
    ParseError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
)


class XlsxSheet(FileSheet):
    """One worksheet of an .xlsx file, read and written in place.

    `worksheet` names the worksheet (matched exactly, else ignoring case and spaces); by
    default the first worksheet, whose title is then kept for the sheet's lifetime, so
    reordering tabs mid-batch does not switch sheets.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        worksheet: str | None = None,
        *,
        respect_lock_files: bool = True,
    ) -> None:
        super().__init__(path, respect_lock_files=respect_lock_files)
        self.worksheet = worksheet
        # The title actually used; with no `worksheet`, the first one seen (tabs may be
        # reordered mid-batch). `name` stays as configured so it is a stable identity.
        self._title = worksheet

    def __repr__(self) -> str:
        return f"XlsxSheet({str(self.path)!r}, worksheet={self.worksheet!r})"

    @property
    def name(self) -> str:
        """The file name, with "#worksheet" when one was named, for messages."""
        return f"{self.path.name}#{self.worksheet}" if self.worksheet else self.path.name

    def _parse(self, data: bytes) -> _XlsxDocument:
        workbook = self._load(data)
        return _XlsxDocument(workbook, self._worksheet_of(workbook), self.name)

    def _load(self, data: bytes) -> Workbook:
        try:
            return openpyxl.load_workbook(io.BytesIO(data))
        except _LOAD_ERRORS as exc:
            raise BadSheet(
                self.name,
                f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})",
                "open it in Excel or LibreOffice and save it again as .xlsx",
            ) from exc

    def _worksheet_of(self, workbook: Workbook) -> Worksheet:
        sheets = workbook.worksheets
        if not sheets:
            raise BadSheet(self.name, "the workbook has no worksheet", "add one")
        if self._title is None:
            self._title = sheets[0].title
            return _as_worksheet(sheets[0], self.name)
        for sheet in sheets:
            if sheet.title == self._title:
                return _as_worksheet(sheet, self.name)
        wanted = normalize_header(self._title)
        loose = [sheet for sheet in sheets if normalize_header(sheet.title) == wanted]
        if len(loose) == 1:
            return _as_worksheet(loose[0], self.name)
        titles = ", ".join(repr(sheet.title) for sheet in sheets)
        raise SheetNotFound(
            f"worksheet {self._title!r} in {self.path.name}",
            f"its worksheets are {titles}; name one as {self.path.name}#<worksheet>",
        )


class _XlsxDocument:
    """A loaded workbook and the worksheet this sheet reads and writes."""

    def __init__(self, workbook: Workbook, sheet: Worksheet, name: str) -> None:
        self.workbook, self.sheet, self.name = workbook, sheet, name

    @property
    def table(self) -> Table:
        return _table(self.sheet, self.name)

    def apply(self, cells: Sequence[CellWrite]) -> bool:
        return _apply(self.sheet, cells)

    def dump(self) -> bytes:
        return _save(self.workbook)


def _as_worksheet(sheet: object, name: str) -> Worksheet:
    if not isinstance(sheet, Worksheet):
        raise BadSheet(name, "that worksheet is not a plain worksheet", "pick another one")
    return sheet


def _save(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _table(sheet: Worksheet, name: str) -> Table:
    rows: list[list[str]] = []
    for cells in sheet.iter_rows(min_row=1, max_row=sheet.max_row, max_col=sheet.max_column):
        values = [_cell_text(cell) for cell in cells]
        while values and values[-1] == "":
            values.pop()
        rows.append(values)
    while rows and not rows[-1]:
        rows.pop()
    if not rows or not any(rows[0]):
        raise BadSheet(
            f"{name} (worksheet {sheet.title!r})",
            "the header row is empty",
            "put the column names in row 1",
        )
    return Table(header=rows[0], rows=rows[1:])


def _apply(sheet: Worksheet, cells: Sequence[CellWrite]) -> bool:
    """Write each cell as literal text; True when any cell changed."""
    changed = False
    for write in cells:
        cell = sheet.cell(row=write.row + 2, column=write.column + 1)
        if isinstance(cell, MergedCell):
            log.warning("%s!%s is inside a merged range; not written", sheet.title, cell.coordinate)
            continue
        changed |= _set_text(cell, write.text)
    return changed


def _set_text(cell: Cell, value: str) -> bool:
    """Store `value` in `cell` as a literal string cell; True when the cell changed.

    Never a formula, number or error code: `=HYPERLINK(...)`, `00123` and `#N/A` stay text.
    Formula-like text also gets Excel's quote prefix so that editing the cell keeps it text.
    An empty value clears the cell.
    """
    text = _ILLEGAL_XML.sub("", clip(value))
    if text == "":
        if cell.value is None:
            return False
        cell.value = None
        return True
    if cell.value == text and cell.data_type == "s":
        return False
    cell.value = text
    # openpyxl turns a str starting with "=" into a formula and "#N/A" into an error.
    cell.data_type = "s"
    if is_formula_like(text) and not cell.quotePrefix:
        cell.quotePrefix = True
    return True


def _cell_text(cell: Cell | MergedCell) -> str:
    """The text a cell shows, as closely as a plain reader can (see the module docstring)."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, ArrayFormula):
        return str(value.text or "")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time() and not _has_time(str(cell.number_format)):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float):
        return _number_text(value, str(cell.number_format))
    return str(value)


def _has_time(number_format: str) -> bool:
    return any(part in number_format.lower() for part in ("h", "s", "am/pm"))


def _number_text(value: float, number_format: str) -> str:
    section = number_format.split(";")[0]
    simple = _SIMPLE_FORMAT.fullmatch(section)
    if number_format.lower() in _GENERAL or simple is None or (value < 0 and ";" in number_format):
        return _general(value)
    integer, decimals = simple.group("int"), len(simple.group("frac") or "")
    if not integer and not decimals:
        return _general(value)
    if simple.group("pct"):
        value *= 100
    text = f"{abs(value):,.{decimals}f}" if "," in integer else f"{abs(value):.{decimals}f}"
    whole, point, fraction = text.partition(".")
    digits = integer.count("0")
    if digits == 0 and whole == "0":
        whole = ""
    elif "," not in integer:
        whole = whole.zfill(digits)
    text = whole + point + fraction + simple.group("pct")
    return "-" + text if value < 0 and any(c in "123456789" for c in text) else text


def _general(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    # Excel keeps 15 significant digits: 0.1 + 0.2 shows as 0.3.
    return format(value, ".15g")
