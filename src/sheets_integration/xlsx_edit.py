"""`StreamedXlsxUpdate`: `write_by_job_id` on an .xlsx workbook in one streaming pass.

The worksheet part is read a row at a time (`xlsx_stream`), each row whose Job ID has an
update is spliced as `xlsx_splice` splices it, every other row is copied as its bytes, and
the new part goes to a temporary file; the package is then written once with that part
and the few small parts a write changes (styles, workbook, calculation chain), every other
part copied through (`Package.write_to`). Memory stays a block of the part and the
updates' index, whatever the sheet's size, and a flush of many pieces (`Updates`) costs
one read and one write of the file, not one per piece.

The cells written are the ones `safety.plan_updates` plans on the parsed table: the row
located by its Job ID as the file stands now (the first row carrying it), `fill_only`
cells left alone where the operator put another value, merged cells reported as
unwritable. What the stream cannot decide alone (a column to append, no Job ID column, a
header cell it cannot place) raises `NeedsDocument`: the caller then takes the parsed path.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from openpyxl.utils.cell import get_column_letter

from sheets_integration.csv_records import NeedsDocument
from sheets_integration.sheet import JOB_ID_COLUMN, CellValue, WriteResult, normalize_header
from sheets_integration.sheet import cell_text as value_text
from sheets_integration.xlsx_markup import RawCell
from sheets_integration.xlsx_package import (
    Package,
    SheetEntry,
    forget_calculated,
    recalculated_on_load,
    without_part,
)
from sheets_integration.xlsx_splice import RowSplicer
from sheets_integration.xlsx_stream import (
    WorksheetStream,
    cell_text,
    find_cell,
    merged_refs,
    row_cells,
    tail_of,
)
from sheets_integration.xlsx_strings import shared_strings
from sheets_integration.xlsx_styles import Styles
from sheets_integration.xlsx_worksheet import CellRange, MergedRanges

log = logging.getLogger(__name__)


class Updates(Protocol):
    """The cells of a write by job id, looked up one row at a time."""

    def get(self, job_id: str) -> tuple[str, Mapping[str, CellValue], Collection[str]] | None:
        """For `job_id` (stripped, as the sheet shows it): the id as the update gave it, its
        {column: value} and the normalized names of its columns only filled where empty;
        None without an update."""
        ...

    def columns(self) -> Collection[str]:
        """Every column some update writes."""
        ...

    def found(self, job_id: str) -> None:
        """Note that `job_id`'s row was found and written."""
        ...

    def missing(self) -> frozenset[str]:
        """The job ids (as given) whose rows were not found."""
        ...


class MemoryUpdates:
    """The `Updates` of one `write_by_job_id` call, held as given."""

    def __init__(
        self, updates: Mapping[str, Mapping[str, CellValue]], fill_only: Collection[str] = ()
    ) -> None:
        if len({job_id.strip() for job_id in updates}) != len(updates):
            raise NeedsDocument  # two ids naming one row
        self._by_key = {job_id.strip(): job_id for job_id in updates}
        self._updates = updates
        self._fill = frozenset(normalize_header(column) for column in fill_only)
        self._found: set[str] = set()

    def get(self, job_id: str) -> tuple[str, Mapping[str, CellValue], Collection[str]] | None:
        given = self._by_key.get(job_id)
        return None if given is None else (given, self._updates[given], self._fill)

    def columns(self) -> Collection[str]:
        return {column for values in self._updates.values() for column in values}

    def found(self, job_id: str) -> None:
        self._found.add(job_id)

    def missing(self) -> frozenset[str]:
        return frozenset(given for key, given in self._by_key.items() if key not in self._found)


@dataclass
class OpenWorkbook:
    """What a streamed pass over one worksheet needs to know before its first row."""

    package: Package
    entry: SheetEntry
    part: str
    styles: Styles
    strings: Sequence[str]
    merged: MergedRanges


def open_workbook(source: BinaryIO, entry_of: EntryOf, sheet: str) -> OpenWorkbook:
    """The package of `source`, its worksheet (`entry_of`), styles, shared strings (spilled)
    and the merged ranges of the worksheet's tail (one cheap pass over the part)."""
    package = Package(source, sheet)
    entry = entry_of(package)
    assert entry.part is not None
    styles_part = package.styles_part()
    styles = Styles(package.read(styles_part) if styles_part else None, styles_part or "", sheet)
    strings = shared_strings(package, package.shared_strings_part(), sheet)
    with package.open(entry.part) as part:
        tail = tail_of(part, sheet)
    merged = MergedRanges([r for ref in merged_refs(tail) if (r := CellRange.parse(ref))])
    return OpenWorkbook(package, entry, entry.part, styles, strings, merged)


class StreamedXlsxUpdate:
    """One write by job id into worksheet `entry`, run as a `stream_rewrite` edit."""

    def __init__(
        self,
        updates: Updates,
        entry_of: EntryOf,
        sheet: str,
        *,
        job_column: str = JOB_ID_COLUMN,
    ) -> None:
        self.updates, self.entry_of, self.sheet = updates, entry_of, sheet
        self.job_column = job_column
        job_key = normalize_header(job_column)
        if any(normalize_header(column) == job_key for column in updates.columns()):
            raise NeedsDocument  # the parsed path says why that is refused

    def __call__(self, source: BinaryIO, target: BinaryIO) -> tuple[bool, WriteResult]:
        book = open_workbook(source, self.entry_of, self.sheet)
        package, entry, styles, strings, merged = (
            book.package,
            book.entry,
            book.styles,
            book.strings,
            book.merged,
        )
        assert entry.part is not None
        with package.open(entry.part) as part, tempfile.TemporaryFile() as rows:
            stream = WorksheetStream(part, self.sheet)
            splicer = RowSplicer(stream.head, stream.prefix, styles, strings, self.sheet)
            pass_ = _Pass(self, splicer, merged, styles, strings, package.date1904())
            for gap, raw, number in stream.rows():
                rows.write(gap)
                rows.write(pass_.row(raw, number))
            rows.write(stream.gap)
            result = pass_.result()
            if not splicer.result.changed:
                return False, result
            write_workbook(package, entry, styles, splicer, stream, rows, target)
        return True, result


def write_workbook(
    package: Package,
    entry: SheetEntry,
    styles: Styles,
    splicer: RowSplicer,
    stream: WorksheetStream,
    rows: BinaryIO,
    target: BinaryIO,
) -> None:
    """The package into `target` with worksheet `entry` made of `stream`'s head (its
    dimension grown), the new `rows` (a file, read from its start) and `stream`'s tail,
    and the small parts the splice changed (styles, workbook, calculation chain)."""
    assert entry.part is not None
    replaced: dict[str, bytes | BinaryIO] = {}
    with tempfile.TemporaryFile() as worksheet:
        worksheet.write(splicer.head_after(stream.head))
        rows.seek(0)
        while block := rows.read(1 << 20):
            worksheet.write(block)
        worksheet.write(stream.tail)
        replaced[entry.part] = worksheet
        workbook = package.read(package.workbook)
        recalculated = recalculated_on_load(workbook)
        if recalculated != workbook:
            replaced[package.workbook] = recalculated
        if styles.changed and styles.data is not None:
            replaced[styles.part] = styles.data
        removed: frozenset[str] = frozenset()
        chain = package.calc_chain_part() if splicer.result.removed_formulas else None
        if chain is not None:
            kept = forget_calculated(
                package.read(chain), entry.sheet_id, splicer.result.removed_formulas
            )
            if kept is not None:
                replaced[chain] = kept
            else:
                replaced.update(without_part(package, chain, package.workbook))
                removed = frozenset({chain})
        package.write_to(target, replaced, removed)


class EntryOf(Protocol):
    """How a sheet picks its worksheet among a package's sheets."""

    def __call__(self, package: Package, /) -> SheetEntry: ...


class _Pass:
    """The state of one pass over the rows: the header's columns, then each row's writes."""

    def __init__(
        self,
        edit: StreamedXlsxUpdate,
        splicer: RowSplicer,
        merged: MergedRanges,
        styles: Styles,
        strings: Sequence[str],
        date1904: bool,
    ) -> None:
        self.edit, self.splicer, self.merged = edit, splicer, merged
        self.styles, self.strings, self.date1904 = styles, strings, date1904
        self.positions: dict[str, int] = {}  # normalized column name -> 1-based column
        self.job_column = 0
        self.job_letters = b""
        self.seen: set[str] = set()
        self.cells = self.kept = 0
        self.unwritable: dict[str, list[str]] = {}
        self.header_seen = False

    def _text(self, raw_cell: RawCell) -> str:
        return cell_text(raw_cell, self.strings, self.styles, self.date1904)

    def _header(self, raw: bytes) -> None:
        for column, cell in sorted(row_cells(raw).items()):
            text = self._text(cell)
            if text and self.merged.range_at(1, column) is None:
                self.positions.setdefault(normalize_header(text), column)
        job = self.positions.get(normalize_header(self.edit.job_column))
        if job is None or any(
            normalize_header(column) not in self.positions for column in self.edit.updates.columns()
        ):
            raise NeedsDocument  # no Job ID column, or a column to append: the parsed path
        self.job_column = job
        self.job_letters = get_column_letter(job).encode()
        self.header_seen = True

    def row(self, raw: bytes, number: int) -> bytes:
        if number == 1:
            self._header(raw)
            return raw
        if not self.header_seen:
            self._header(b"")  # no header row: raises
        job_cell = find_cell(raw, self.job_letters + b"%d" % number, self.job_column)
        key = self._text(job_cell).strip() if job_cell is not None else ""
        update = self.edit.updates.get(key) if key and key not in self.seen else None
        if update is None:
            if self.splicer.pending(number):
                return self.splicer.row(raw, number, {})
            return raw
        self.seen.add(key)
        self.edit.updates.found(key)
        given, values, fill_keys = update
        writes: dict[int, CellValue] = {}
        for column, value in values.items():
            name = normalize_header(column)
            position = self.positions[name]
            inside = self.merged.range_at(number, position)
            if inside is not None:
                where = f"{get_column_letter(position)}{number}"
                self.unwritable.setdefault(given, []).append(
                    f"cell {where} is inside merged range {inside.text}; not written"
                )
                continue
            if name in fill_keys:
                ref = get_column_letter(position).encode() + b"%d" % number
                current_cell = find_cell(raw, ref, position)
                current = self._text(current_cell) if current_cell is not None else ""
                if current != "" and current != value_text(value):
                    self.kept += 1
                    continue
            self.cells += 1
            writes[position] = value
        return self.splicer.row(raw, number, writes) if writes else raw

    def result(self) -> WriteResult:
        return WriteResult(
            cells=self.cells,
            missing=self.edit.updates.missing(),
            unwritable={job_id: tuple(reasons) for job_id, reasons in self.unwritable.items()},
            kept=self.kept,
        )
