"""`XlsxSheet`: one worksheet of a local .xlsx workbook as a `Sheet`.

Reading returns what the user sees as closely as a plain reader can (see `xlsx_cells`):
text as stored, formulas as their text, numbers and dates by their formats, the label of a
`=HYPERLINK` cell; `Table.links` gives the target of hyperlinked cells and `Table.merged`
the cells hidden inside merged ranges.

Writing edits the package, not a model of it (see `xlsx_splice`): only the `<c>` elements
of the cells written change, in the one worksheet part written, plus a quote-prefixed cell
format in the styles part when formula-like text needs one, the entry of a formula a write
replaced in the calculation chain, and `fullCalcOnLoad` in the workbook part (Excel then
recomputes formulas over the cells written; their cached results are kept as they were,
not guessed). Every other part (other worksheets, shared strings, drawings, charts,
comments, defined names) and every other byte of the worksheet (cached formula results,
styles, merges, hyperlinks, validation, conditional formats) is kept exactly as the file
had it. Text is written as inline strings and never becomes a formula or an error code;
numbers are written as numbers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import BinaryIO, TypeVar

from openpyxl.utils.cell import get_column_letter

from sheets_integration.csv_records import NeedsDocument
from sheets_integration.errors import BadSheet, SheetNotFound
from sheets_integration.file_sheet import Document, FileSheet
from sheets_integration.safety import CellWrite
from sheets_integration.sheet import (
    JOB_ID_COLUMN,
    CellValue,
    Piece,
    Table,
    WriteResult,
    cell_text,
    normalize_header,
)
from sheets_integration.spilled_updates import spill
from sheets_integration.stream_rewrite import stream_read, stream_rewrite
from sheets_integration.xlsx_cells import written_text
from sheets_integration.xlsx_document import StreamedWorkbook
from sheets_integration.xlsx_edit import MemoryUpdates, StreamedXlsxUpdate, Updates
from sheets_integration.xlsx_package import (
    Package,
    SheetEntry,
    forget_calculated,
    recalculated_on_load,
    without_part,
)
from sheets_integration.xlsx_splice import splice
from sheets_integration.xlsx_styles import Styles
from sheets_integration.xlsx_worksheet import read_shared_strings, read_worksheet

log = logging.getLogger(__name__)

T = TypeVar("T")


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

    def write_by_job_id(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        *,
        job_column: str = JOB_ID_COLUMN,
        fill_only: Collection[str] = (),
    ) -> WriteResult:
        """`FileSheet.write_by_job_id`, streamed row by row (`xlsx_edit`): the worksheet is
        never held whole. What the stream cannot decide alone takes the parsed path."""
        if not updates:
            return WriteResult()
        try:
            return self._streamed(MemoryUpdates(updates, fill_only), job_column)
        except NeedsDocument:
            return super().write_by_job_id(updates, job_column=job_column, fill_only=fill_only)

    def write_pieces(
        self, pieces: Iterable[Piece], *, job_column: str = JOB_ID_COLUMN
    ) -> WriteResult:
        """Every piece written in one pass over the workbook (`sheet.WritesPieces`): the
        pieces are kept in a temporary database meanwhile (`spilled_updates`)."""
        with spill(pieces) as updates:
            if not len(updates):
                return WriteResult()
            try:
                return self._streamed(updates, job_column)
            except NeedsDocument:
                results = [
                    super().write_by_job_id(piece, job_column=job_column, fill_only=fill_only)
                    for piece, fill_only in updates.pieces()
                ]
        return WriteResult(
            cells=sum(result.cells for result in results),
            missing=frozenset().union(*(result.missing for result in results)),
            unwritable={k: v for result in results for k, v in result.unwritable.items()},
            kept=sum(result.kept for result in results),
        )

    def read(self) -> Table:
        """`FileSheet.read`, streamed (`xlsx_document`): the rows go to a `SpilledRows`."""
        return stream_read(
            self.path,
            self.name,
            lambda source: StreamedWorkbook(source, self._entry_of, self.name).table,
            versions=self.versions,
        )

    def _rewrite(self, edit: Callable[[Document], tuple[bool, T]]) -> T:
        """`FileSheet._rewrite` as two streaming passes (`xlsx_document`): the workbook is
        read as a `StreamedWorkbook`, planned on, and spliced into its new version."""

        def streamed(source: BinaryIO, target: BinaryIO) -> tuple[bool, T]:
            document = StreamedWorkbook(source, self._entry_of, self.name)
            wants, result = edit(document)
            return (wants and document.write(target)), result

        return stream_rewrite(
            self.path,
            self.name,
            streamed,
            respect_lock_files=self.respect_lock_files,
            versions=self.versions,
        )

    def _streamed(self, updates: Updates, job_column: str) -> WriteResult:
        edit = StreamedXlsxUpdate(updates, self._entry_of, self.name, job_column=job_column)
        result = stream_rewrite(
            self.path,
            self.name,
            edit,
            respect_lock_files=self.respect_lock_files,
            versions=self.versions,
        )
        log.debug(
            "%s: wrote %d cells, %d jobs missing", self.name, result.cells, len(result.missing)
        )
        return result

    def _parse(self, data: bytes) -> _XlsxDocument:
        package = Package(data, self.name)
        return _XlsxDocument(package, self._entry_of(package), self.name)

    def _entry_of(self, package: Package) -> SheetEntry:
        entries = package.sheets()
        worksheets = [entry for entry in entries if entry.part is not None]
        if not worksheets:
            raise BadSheet(self.name, "the workbook has no worksheet", "add one")
        if self._title is None:
            self._title = worksheets[0].title
            return worksheets[0]
        exact = [entry for entry in entries if entry.title == self._title]
        wanted = normalize_header(self._title)
        loose = [entry for entry in entries if normalize_header(entry.title) == wanted]
        found = exact or (loose if len(loose) == 1 else [])
        if found:
            if found[0].part is None:
                raise BadSheet(
                    self.name,
                    f"{found[0].title!r} is a chart or dialog sheet, not a worksheet",
                    "name a worksheet",
                )
            return found[0]
        titles = ", ".join(repr(entry.title) for entry in entries)
        raise SheetNotFound(
            f"worksheet {self._title!r} in {self.path.name}",
            f"its worksheets are {titles}; name one as {self.path.name}#<worksheet>",
        )


class _XlsxDocument:
    """A workbook package and the worksheet this sheet reads and writes."""

    def __init__(self, package: Package, entry: SheetEntry, name: str) -> None:
        assert entry.part is not None
        self.package, self.entry, self.name = package, entry, name
        self.part = entry.part
        self.xml = package.read(self.part)
        styles_part = package.styles_part()
        self.styles = Styles(
            package.read(styles_part) if styles_part else None, styles_part or "", name
        )
        strings_part = package.shared_strings_part()
        self.strings = read_shared_strings(
            package.read(strings_part) if strings_part else None, strings_part or "", name
        )
        content = read_worksheet(
            self.xml,
            strings=self.strings,
            styles=self.styles,
            date1904=package.date1904(),
            targets=package.hyperlink_targets(self.part),
            sheet=f"{name} (worksheet {entry.title!r})",
        )
        if not content.rows or not any(content.rows[0]):
            raise BadSheet(
                f"{name} (worksheet {entry.title!r})",
                "the header row is empty",
                "put the column names in row 1",
            )
        self.rows, self.links, self.merged = content.rows, content.links, content.merged
        self.removed_formulas: set[str] = set()

    @property
    def table(self) -> Table:
        return Table(header=self.rows[0], rows=self.rows[1:], links=self.links, merged=self.merged)

    def apply(self, cells: Sequence[CellWrite]) -> bool:
        """Write the cells (text as text, numbers as numbers); True when any cell changed.

        A cell inside a merged range (not its top-left cell) cannot hold a value and is
        skipped; `FileSheet` reports it against its job.
        """
        writes: dict[int, dict[int, CellValue]] = {}
        for cell in cells:
            row, column = cell.row + 2, cell.column + 1
            merged = self.merged.range_at(row, column)
            if merged is None:
                writes.setdefault(row, {})[column] = cell.value
                continue
            where = f"{get_column_letter(column)}{row}"
            if row == 1:
                # A column whose header cannot be written would get values under no name.
                raise BadSheet(
                    f"{self.name} (worksheet {self.entry.title!r})",
                    f"cannot add the column {cell.text!r}: cell {where} is inside merged "
                    f"range {merged.text}",
                    f"unmerge {merged.text}, or type {cell.text!r} into a free header cell",
                )
            log.warning(
                "%s!%s is inside merged range %s; not written", self.entry.title, where, merged.text
            )
        result = splice(self.xml, writes, styles=self.styles, strings=self.strings, sheet=self.name)
        if not result.changed:
            return False
        self.xml = result.data
        self.removed_formulas |= result.removed_formulas
        for row, values in writes.items():
            self._note(row, values)
        return True

    def _note(self, row: int, values: dict[int, CellValue]) -> None:
        """Keep the text rows as a re-read would show them after a write."""
        while len(self.rows) < row:
            self.rows.append([])
        texts = self.rows[row - 1]
        for column, value in values.items():
            text = written_text(value) if isinstance(value, str) else cell_text(value)
            if len(texts) < column:
                texts.extend([""] * (column - len(texts)))
            texts[column - 1] = text
            self.links.pop((row - 2, column - 1), None)
        while texts and texts[-1] == "":
            texts.pop()

    def dump(self) -> bytes:
        replaced = {self.part: self.xml}
        removed: set[str] = set()
        workbook = self.package.read(self.package.workbook)
        recalculated = recalculated_on_load(workbook)
        if recalculated != workbook:
            replaced[self.package.workbook] = recalculated
        if self.styles.changed and self.styles.data is not None:
            replaced[self.styles.part] = self.styles.data
        chain = self.package.calc_chain_part() if self.removed_formulas else None
        if chain is not None:
            kept = forget_calculated(
                self.package.read(chain), self.entry.sheet_id, self.removed_formulas
            )
            if kept is None:
                removed.add(chain)
                replaced.update(without_part(self.package, chain, self.package.workbook))
            else:
                replaced[chain] = kept
        return self.package.dump(replaced, frozenset(removed))
