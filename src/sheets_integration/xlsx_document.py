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

import io
import logging
import tempfile
from collections.abc import Sequence
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

    def write(self, target: BinaryIO) -> bool:
        """The workbook with every cell applied, into `target`; False when no cell changed
        (then `target` holds nothing of use)."""
        book = self.book
        pending = sorted(self.writes, key=lambda cell: (cell.row, cell.column))
        index = 0
        with book.package.open(book.part) as part, tempfile.TemporaryFile() as rows:
            stream = WorksheetStream(part, self.where)
            splicer = RowSplicer(stream.head, stream.prefix, book.styles, book.strings, self.name)
            inserted = False
            for gap, raw, number in stream.rows():
                while index < len(pending) and pending[index].row + 2 < number:
                    index, new = self._take(pending, index)
                    rows.write(splicer.new_row(pending[index - 1].row + 2, new))
                    inserted = True
                writes: dict[int, CellValue] = {}
                if index < len(pending) and pending[index].row + 2 == number:
                    index, writes = self._take(pending, index)
                rows.write(gap)
                if writes or splicer.pending(number) or (inserted and not _numbered(raw)):
                    rows.write(splicer.row(raw, number, writes))
                else:
                    rows.write(raw)
            rows.write(stream.gap)
            while index < len(pending):
                index, new = self._take(pending, index)
                rows.write(splicer.new_row(pending[index - 1].row + 2, new))
            if not splicer.result.changed:
                return False
            write_workbook(book.package, book.entry, book.styles, splicer, stream, rows, target)
        return True

    def dump(self) -> bytes:
        """`write`, into memory (`file_sheet.Document`; the streamed path uses `write`)."""
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()

    @staticmethod
    def _take(pending: Sequence[CellWrite], index: int) -> tuple[int, dict[int, CellValue]]:
        """The writes of the row of `pending[index]` ({1-based column: value}) and the
        index after them."""
        row = pending[index].row
        writes: dict[int, CellValue] = {}
        while index < len(pending) and pending[index].row == row:
            writes[pending[index].column + 1] = pending[index].value
            index += 1
        return index, writes


def _numbered(raw: bytes) -> bool:
    """True when the `<row>` element `raw` names its row number (`r`)."""
    start = raw[: raw.find(b">")]
    return b" r=" in start or b" r =" in start or b"\tr=" in start or b"\nr=" in start
