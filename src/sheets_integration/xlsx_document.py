"""`StreamedWorkbook`: an .xlsx worksheet as a `file_sheet.Document` that is never held whole.

Reading streams the worksheet part (`xlsx_worksheet.stream_worksheet`): the data rows go to
a `SpilledRows`, the shared strings to another (`xlsx_strings`), so preparing a batch on a
500,000-row workbook holds neither a DOM, nor the part's bytes, nor a list of its rows.
Writing (`write`) is a second streaming pass: the cells applied, sorted by row, are
spliced into their rows as the rows pass (`xlsx_splice.RowSplicer`), and the package is
written once (`xlsx_edit.write_workbook`). So `ensure_columns` and `assign_job_ids` plan
their cells on the table exactly as before (`safety.plan_*`) and cost one read and one
write of the file.

`table` reflects the header cells applied (a column added); the data rows stay as read
(no caller of a rewrite reads them after writing).
"""

from __future__ import annotations

import heapq
import io
import itertools
import logging
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO

from openpyxl.utils.cell import get_column_letter

from sheets_integration.errors import BadSheet
from sheets_integration.safety import CellWrite
from sheets_integration.sheet import CellValue, Table
from sheets_integration.xlsx_cells import written_text
from sheets_integration.xlsx_edit import EntryOf, open_workbook, write_workbook
from sheets_integration.xlsx_splice import RowSplicer
from sheets_integration.xlsx_stream import WorksheetStream
from sheets_integration.xlsx_worksheet import stream_worksheet

log = logging.getLogger(__name__)


class StreamedWorkbook:
    """One worksheet of the workbook `source`, read streamed; see the module docstring."""

    def __init__(self, source: BinaryIO, entry_of: EntryOf, name: str) -> None:
        self.book = open_workbook(source, entry_of, name)
        self.name = name
        book = self.book
        self.where = f"{name} (worksheet {book.entry.title!r})"
        with book.package.open(book.part) as part:
            content = stream_worksheet(
                part,
                strings=book.strings,
                styles=book.styles,
                date1904=book.package.date1904(),
                targets=book.package.hyperlink_targets(book.part),
                merged=book.merged,
                sheet=self.where,
            )
        self.header = content.rows[0]
        if not any(self.header):
            raise BadSheet(self.where, "the header row is empty", "put the column names in row 1")
        self.rows, self.links = content.data, content.links
        self.writes: list[CellWrite] = []

    @property
    def table(self) -> Table:
        return Table(header=self.header, rows=self.rows, links=self.links, merged=self.book.merged)

    def apply(self, cells: Sequence[CellWrite]) -> bool:
        """Keep the cells for `write`; True when there are any (whether they change a cell
        is known only once `write` meets them). A cell inside a merged range is skipped,
        as `XlsxSheet` skips it; a header cell there cannot be written (BadSheet)."""
        kept = False
        for cell in cells:
            row, column = cell.row + 2, cell.column + 1
            merged = self.book.merged.range_at(row, column)
            if merged is not None:
                where = f"{get_column_letter(column)}{row}"
                if row == 1:
                    raise BadSheet(
                        self.where,
                        f"cannot add the column {cell.text!r}: cell {where} is inside merged "
                        f"range {merged.text}",
                        f"unmerge {merged.text}, or type {cell.text!r} into a free header cell",
                    )
                log.warning(
                    "%s!%s is inside merged range %s; not written",
                    self.book.entry.title,
                    where,
                    merged.text,
                )
                continue
            if cell.row < 0:
                text = written_text(cell.text)
                if len(self.header) <= cell.column:
                    self.header.extend([""] * (cell.column + 1 - len(self.header)))
                self.header[cell.column] = text
            self.writes.append(cell)
            kept = True
        return kept

    def write(self, target: BinaryIO, rows: Iterable[RowWrites] = ()) -> bool:
        """The workbook with every cell applied, and the cells of `rows` (data rows in
        ascending order, each with its {0-based column: value}), into `target`; False when
        no cell changed (then `target` holds nothing of use). `rows` is taken one row at a
        time as the pass reaches it: a write to every row of a big sheet is never a list."""
        book = self.book
        applied = sorted(self.writes, key=lambda cell: (cell.row, cell.column))
        pending = _Rows(heapq.merge(_grouped(applied), rows, key=lambda group: group[0]))
        with book.package.open(book.part) as part, tempfile.TemporaryFile() as out:
            stream = WorksheetStream(part, self.where)
            splicer = RowSplicer(stream.head, stream.prefix, book.styles, book.strings, self.name)
            inserted = False
            for gap, raw, number in stream.rows():
                for row, new in pending.before(number):
                    out.write(splicer.new_row(row, new))
                    inserted = True
                writes = pending.at(number)
                out.write(gap)
                if writes or splicer.pending(number) or (inserted and not _numbered(raw)):
                    out.write(splicer.row(raw, number, writes))
                else:
                    out.write(raw)
            out.write(stream.gap)
            for row, new in pending.before(None):
                out.write(splicer.new_row(row, new))
            if not splicer.result.changed:
                return False
            write_workbook(book.package, book.entry, book.styles, splicer, stream, out, target)
        return True

    def dump(self) -> bytes:
        """`write`, into memory (`file_sheet.Document`; the streamed path uses `write`)."""
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()


#: A data row index (-1: the header) and the cells to write in it, {0-based column: value}.
RowWrites = tuple[int, Mapping[int, CellValue]]


def _grouped(cells: Sequence[CellWrite]) -> Iterator[RowWrites]:
    """`cells` (sorted by row) as one group a row."""
    for row, group in itertools.groupby(cells, key=lambda cell: cell.row):
        yield row, {cell.column: cell.value for cell in group}


class _Rows:
    """The row groups still to write, as the pass over the worksheet asks for them: 1-based
    row numbers and {1-based column: value}, two groups of one row merged."""

    def __init__(self, groups: Iterator[RowWrites]) -> None:
        self._groups = groups
        self._ahead = next(groups, None)  # the group read after the last one taken
        self._next = self._take()

    def _take(self) -> tuple[int, dict[int, CellValue]] | None:
        if self._ahead is None:
            return None
        row, cells = self._ahead
        writes = {column + 1: value for column, value in cells.items()}
        self._ahead = next(self._groups, None)
        while self._ahead is not None and self._ahead[0] == row:
            writes.update((column + 1, value) for column, value in self._ahead[1].items())
            self._ahead = next(self._groups, None)
        return row + 2, writes

    def before(self, number: int | None) -> Iterator[tuple[int, dict[int, CellValue]]]:
        """The groups of rows above row `number` (every one left when None)."""
        while self._next is not None and (number is None or self._next[0] < number):
            yield self._next
            self._next = self._take()

    def at(self, number: int) -> dict[int, CellValue]:
        """The writes of row `number` ({} when none); call after `before(number)`."""
        if self._next is None or self._next[0] != number:
            return {}
        writes = self._next[1]
        self._next = self._take()
        return writes


def _numbered(raw: bytes) -> bool:
    """True when the `<row>` element `raw` names its row number (`r`)."""
    start = raw[: raw.find(b">")]
    return b" r=" in start or b" r =" in start or b"\tr=" in start or b"\nr=" in start
