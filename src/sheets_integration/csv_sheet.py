"""`CsvSheet`: a local .csv file as a `Sheet`.

The file keeps its own shape: delimiter (sniffed from the header line, or Excel's `sep=`
line), quoting style, line endings, byte-order mark, blank rows and trailing empty cells.
Only the records that receive a value are re-serialised; every other record is written
back byte for byte as it stands on disk at write time.
"""

from __future__ import annotations

import codecs
import csv
import logging
import os
from collections.abc import Collection, Iterator, Mapping, Sequence

from sheets_integration.csv_format import (
    NEWLINE,
    SEP_LINE,
    UTF8,
    Quoting,
    format_record,
    sniff_delimiter,
    sniff_quoting,
    terminator,
)
from sheets_integration.csv_records import NeedsDocument, read_table, usable
from sheets_integration.csv_stream import StreamedAssignment, StreamedColumns, StreamedUpdate
from sheets_integration.errors import BadSheet
from sheets_integration.file_sheet import FileSheet
from sheets_integration.safety import CellWrite, escape_csv
from sheets_integration.sheet import JOB_ID_COLUMN, CellValue, Table, WriteResult
from sheets_integration.stream_rewrite import stream_read, stream_rewrite

log = logging.getLogger(__name__)


class CsvSheet(FileSheet):
    """A .csv file read and written in place (see the module docstring for what is kept).

    `encoding` decodes the file; the default accepts UTF-8 with or without a byte-order
    mark and writes back whichever the file had. Values written are OWASP-escaped
    (`safety.escape_csv`), so reading them back shows the leading `'` where one was added.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        encoding: str = "utf-8-sig",
        *,
        respect_lock_files: bool = True,
    ) -> None:
        super().__init__(path, respect_lock_files=respect_lock_files)
        self.encoding = encoding

    def __repr__(self) -> str:
        return f"CsvSheet({str(self.path)!r}, encoding={self.encoding!r})"

    def _parse(self, data: bytes) -> _CsvDocument:
        return _CsvDocument.parse(data, self.encoding, self.name)

    def read(self) -> Table:
        """`FileSheet.read`, streamed: the rows go to a `SpilledRows` as they are parsed,
        so neither the file's bytes nor a list of every row is held. A file the stream
        cannot read is parsed whole, which says what is wrong with it."""
        try:
            return stream_read(
                self.path,
                self.name,
                lambda source: read_table(source, self.encoding),
                versions=self.versions,
            )
        except NeedsDocument:
            return super().read()

    def ensure_columns(self, columns: Sequence[str]) -> Table:
        """`FileSheet.ensure_columns`, streamed: the header record is rewritten and the
        rest of the file copied byte for byte (`csv_stream.StreamedColumns`)."""
        if not usable(self.encoding):
            return super().ensure_columns(columns)
        try:
            return stream_rewrite(
                self.path,
                self.name,
                StreamedColumns(columns),
                respect_lock_files=self.respect_lock_files,
                versions=self.versions,
            )
        except NeedsDocument:
            return super().ensure_columns(columns)

    def assign_job_ids(
        self,
        assignments: Mapping[int, str],
        expected: Mapping[int, Mapping[str, str]],
        *,
        job_column: str = JOB_ID_COLUMN,
    ) -> set[int]:
        """`FileSheet.assign_job_ids`, streamed record by record (`csv_stream`)."""
        if not assignments or not usable(self.encoding):
            return super().assign_job_ids(assignments, expected, job_column=job_column)
        try:
            edit = StreamedAssignment(assignments, expected, job_column=job_column)
            return stream_rewrite(
                self.path,
                self.name,
                edit,
                respect_lock_files=self.respect_lock_files,
                versions=self.versions,
            )
        except NeedsDocument:
            return super().assign_job_ids(assignments, expected, job_column=job_column)

    def write_by_job_id(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        *,
        job_column: str = JOB_ID_COLUMN,
        fill_only: Collection[str] = (),
    ) -> WriteResult:
        """`FileSheet.write_by_job_id`, streamed record by record (`csv_stream`): memory
        stays flat however big the file is. What the stream cannot decide alone (a column
        to append, a file it cannot read) takes the parsed path."""
        if not updates or not usable(self.encoding):
            return super().write_by_job_id(updates, job_column=job_column, fill_only=fill_only)
        try:
            edit = StreamedUpdate(updates, job_column=job_column, fill_only=fill_only)
            result = stream_rewrite(
                self.path,
                self.name,
                edit,
                respect_lock_files=self.respect_lock_files,
                versions=self.versions,
            )
        except NeedsDocument:
            return super().write_by_job_id(updates, job_column=job_column, fill_only=fill_only)
        log.debug(
            "%s: wrote %d cells, %d jobs missing", self.name, result.cells, len(result.missing)
        )
        return result


class _CsvDocument:
    """A parsed CSV file that remembers each record's raw text, to write back unchanged."""

    def __init__(self, text: str, bom: bool, encoding: str, sheet: str) -> None:
        self.encoding = encoding
        self.bom = bom
        self.sheet = sheet
        self.text = text
        sep_line = SEP_LINE.match(text)
        # Excel's "sep=;" first line names the delimiter and is not part of the table.
        self.first = 1 if sep_line else 0
        body = text[sep_line.end() :] if sep_line else text
        self.delimiter = sep_line.group(1) if sep_line else sniff_delimiter(body)
        self.spans: list[tuple[int, int]] = []
        self.records: list[list[str]] = []
        self._parse()
        if len(self.records) <= self.first or not any(self.records[self.first]):
            raise BadSheet(sheet, "the header row is empty", "put the column names in row 1")
        self.quoting = self._sniff_quoting()
        self.changed: set[int] = set()

    @classmethod
    def parse(cls, data: bytes, encoding: str, sheet: str) -> _CsvDocument:
        """Decode and parse `data`; `BadSheet` when it is not usable CSV text."""
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise BadSheet(
                sheet,
                f"not {'UTF-8' if encoding in UTF8 else encoding} text (byte {exc.start})",
                "save it as UTF-8, or name the file's encoding with --encoding "
                "(e.g. --encoding cp1252 for a file saved by Excel on Windows)",
            ) from exc
        except LookupError as exc:
            raise BadSheet(
                sheet, f"unknown encoding {encoding!r}", "give one such as utf-8 or cp1252"
            ) from exc
        bom = data.startswith(codecs.BOM_UTF8)
        if text.startswith("\ufeff"):
            text = text[1:]
        return cls(text, bom, encoding, sheet)

    def _lines(self, position: list[int]) -> Iterator[str]:
        # Split on CR/LF only (str.splitlines also splits on form feeds and the like).
        start, end_of_text = position[0], len(self.text)
        while start < end_of_text:
            found = NEWLINE.search(self.text, start)
            end = found.end() if found else end_of_text
            position[0] = end
            yield self.text[start:end]
            start = end

    def _parse(self) -> None:
        position = [0]
        reader = csv.reader(self._lines(position), delimiter=self.delimiter, quotechar='"')
        start = 0
        try:
            for fields in reader:
                self.records.append(fields)
                # csv.reader pulls exactly the lines of one record, so `position` is its end.
                self.spans.append((start, position[0]))
                start = position[0]
        except csv.Error as exc:
            raise BadSheet(
                self.sheet,
                f"malformed CSV near record {len(self.records) + 1}: {exc}",
                "fix that line in a text editor or re-export the file",
            ) from exc

    def _sniff_quoting(self) -> Quoting:
        return sniff_quoting(self.records[self.first], self._raw(self.first), self.delimiter)

    def _raw(self, record: int) -> str:
        start, end = self.spans[record]
        return self.text[start:end]

    @property
    def table(self) -> Table:
        """The header and data rows (sheet row 1 is the header)."""
        return Table(header=self.records[self.first], rows=self.records[self.first + 1 :])

    def apply(self, cells: Sequence[CellWrite]) -> bool:
        """Set each cell (escaped); True when any cell changed."""
        changed = False
        # A record we write gets a field for every header column: readers that map fields
        # to the header (csv.DictReader, pandas) then never meet a short row.
        width = len(self.records[self.first])
        for cell in cells:
            record = self.first + 1 + cell.row
            fields = self.records[record]
            value = escape_csv(cell.text)
            if cell.column < len(fields) and fields[cell.column] == value:
                continue
            if cell.column >= len(fields) or len(fields) < width:
                fields.extend([""] * (max(cell.column + 1, width) - len(fields)))
            fields[cell.column] = value
            self.changed.add(record)
            changed = True
        return changed

    def dump(self) -> bytes:
        """The file's new bytes: changed records re-serialised, the rest as they were."""
        pieces: list[str] = ["\ufeff"] if self.bom else []
        for record, (start, end) in enumerate(self.spans):
            raw = self.text[start:end]
            if record in self.changed:
                pieces.append(format_record(self.records[record], self.delimiter, self.quoting))
                pieces.append(terminator(raw))
            else:
                pieces.append(raw)
        encoding = "utf-8" if codecs.lookup(self.encoding).name in UTF8 else self.encoding
        # Untouched text came from this encoding; only a written value can be unencodable.
        return "".join(pieces).encode(encoding, errors="replace")
