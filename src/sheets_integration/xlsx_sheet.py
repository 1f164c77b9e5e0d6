"""`XlsxSheet`: one worksheet of a local .xlsx workbook as a `Sheet`.

Reading returns what the user sees as closely as a plain reader can (see `xlsx_cells`):
text as stored, formulas as their text, numbers and dates by their formats, the label of a
`=HYPERLINK` cell; `Table.links` gives the target of hyperlinked cells and `Table.merged`
the cells hidden inside merged ranges.

Nothing of a big workbook is held whole: reading streams the worksheet into rows kept on
disk, and every write is one streaming pass over the worksheet into a new version of the
file (`xlsx_document`, `xlsx_edit`); the pieces of a big flush go together in one pass
(`write_pieces`), so a flush costs one read and one write of the file.

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
from array import array
from collections.abc import Callable, Collection, Iterable, Mapping
from itertools import pairwise
from typing import BinaryIO, TypeVar

from sheets_integration.csv_records import NeedsDocument
from sheets_integration.errors import BadSheet, SheetNotFound
from sheets_integration.file_sheet import Document, FileSheet
from sheets_integration.safety import judge_job_ids, plan_columns
from sheets_integration.sheet import (
    JOB_ID_COLUMN,
    CellValue,
    Piece,
    Table,
    WriteResult,
    normalize_header,
)
from sheets_integration.spilled_updates import spill
from sheets_integration.stream_rewrite import stream_read, stream_rewrite
from sheets_integration.xlsx_document import StreamedWorkbook
from sheets_integration.xlsx_edit import MemoryUpdates, StreamedXlsxUpdate, Updates
from sheets_integration.xlsx_package import (
    Package,
    SheetEntry,
)

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

    def assign_job_ids(
        self,
        assignments: Mapping[int, str],
        expected: Mapping[int, Mapping[str, str]],
        *,
        job_column: str = JOB_ID_COLUMN,
    ) -> set[int]:
        """`FileSheet.assign_job_ids` in one streamed pass: the rows are judged on the table
        as read (`safety.judge_job_ids`, the same refusals), the rows accepted are kept as
        their indexes only, and each id is written as the pass reaches its row (a list of a
        cell a row held ~100 MB for a 500,000-row sheet). A row whose Job ID cell is inside
        a merged range is refused: it cannot show the id it would be recorded with."""
        if not assignments:
            return set()

        def streamed(source: BinaryIO, target: BinaryIO) -> tuple[bool, set[int]]:
            document = StreamedWorkbook(source, self._entry_of, self.name)
            table = document.table
            header = plan_columns(table, [job_column])
            position = header[0].column if header else table.index(job_column)
            assert position is not None
            accepted = array("I")
            refused: set[int] = set()
            judged = judge_job_ids(table, assignments, expected, job_column=job_column)
            for row, _job_id, writable in judged:
                if writable and (row, position) not in table.merged:
                    accepted.append(row)
                else:
                    refused.add(row)
            if not accepted:
                return False, refused
            if any(a > b for a, b in pairwise(accepted)):
                accepted = array("I", sorted(accepted))
            document.apply(header)
            rows = ((row, {position: assignments[row]}) for row in accepted)
            return document.write(target, rows), refused

        return stream_rewrite(
            self.path,
            self.name,
            streamed,
            respect_lock_files=self.respect_lock_files,
            versions=self.versions,
        )

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
