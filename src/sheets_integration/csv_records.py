"""A CSV file read as a stream of records, each with its raw text.

What the streamed operations on a CSV file share (`csv_stream`'s writes and
`read_table`): the byte-order mark, Excel's `sep=` line, the delimiter and quoting sniffed
from the header, then one record at a time. Nothing of the file is kept but the record at
hand. What the stream cannot read (bytes that are not text in the encoding, malformed CSV,
an empty header) raises `NeedsDocument`: the caller then parses the whole file, which says
what is wrong with it.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO

from sheets_integration.csv_format import (
    SEP_LINE,
    UTF8,
    Quoting,
    sniff_delimiter,
    sniff_quoting,
)
from sheets_integration.safety import escape_csv
from sheets_integration.sheet import Table
from sheets_integration.spilled_rows import SpilledRows


class NeedsDocument(Exception):
    """The streamed operation cannot do this one: use the parsed document instead."""


class Records:
    """The records of a text stream, each with its raw text (csv.reader pulls exactly the
    lines of one record, so the lines pulled since the last record are its text)."""

    def __init__(self, lines: Iterator[str], delimiter: str) -> None:
        self._pulled: list[str] = []
        self._reader = csv.reader(self._pull(lines), delimiter=delimiter, quotechar='"')

    def _pull(self, lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            self._pulled.append(line)
            yield line

    def __iter__(self) -> Iterator[tuple[list[str], str]]:
        for fields in self._reader:
            raw = "".join(self._pulled)
            self._pulled.clear()
            yield fields, raw


@dataclass
class CsvStream:
    """A CSV file being read: how it is spelled, its header, and its data records to come."""

    bom: bool
    sep_line: str  # Excel's "sep=;" line as the file spells it, or ""
    delimiter: str
    quoting: Quoting
    header: Table
    header_raw: str
    records: Iterator[tuple[list[str], str]]

    def head(self) -> str:
        """Everything before the first data record, as the file spells it."""
        return ("\ufeff" if self.bom else "") + self.sep_line + self.header_raw

    def write_head(self, out: io.TextIOWrapper) -> None:
        """Copy everything before the first data record to `out`."""
        out.write(self.head())

    def index(self, column: str) -> int:
        position = self.header.index(column)
        if position is None:
            raise NeedsDocument  # a column to append: the parsed path knows where
        return position


@contextmanager
def reading(source: BinaryIO, encoding: str = "utf-8") -> Iterator[CsvStream]:
    """`source` (at its start) opened as CSV text in `encoding` (a UTF-8 byte-order mark
    is recognised and dropped); what the stream cannot read raises `NeedsDocument`."""
    try:
        utf8 = codecs.lookup(encoding).name in UTF8
    except LookupError as exc:
        raise NeedsDocument from exc
    bom = utf8 and source.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
    if not bom:
        source.seek(0)
    text = io.TextIOWrapper(
        source, encoding="utf-8" if utf8 else encoding, errors="strict", newline=""
    )
    try:
        lines: Iterator[str] = iter(text)
        first = next(lines, "")
        if not bom and first.startswith("\ufeff"):
            first = first[1:]  # a mark the codec left in: dropped, as the parsed document does
        sep_line = SEP_LINE.match(first)
        if sep_line:
            delimiter = sep_line.group(1)
            sep_raw, first = first, next(lines, "")
        else:
            delimiter, sep_raw = sniff_delimiter(first), ""
        records = iter(Records(chain([first], lines), delimiter))
        header, raw = next(records, ([], ""))
        if not any(header):
            raise NeedsDocument
        quoting = sniff_quoting(header, raw, delimiter)
        yield CsvStream(bom, sep_raw, delimiter, quoting, Table(header=header), raw, records)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise NeedsDocument from exc
    finally:
        text.detach()


def read_table(source: BinaryIO, encoding: str = "utf-8") -> Table:
    """The header and data rows of the CSV text in `source`, the rows in a `SpilledRows`:
    memory holds one record at a time while the file is read, and a few rows after."""
    with reading(source, encoding) as sheet:
        rows = SpilledRows(fields for fields, _raw in sheet.records)
    return Table(header=sheet.header.header, rows=rows)


def set_cell(fields: list[str], position: int, text: str, width: int) -> bool:
    """Put `text` (escaped) into `fields[position]`; whether that changed the record. A
    record we write gets a field for every header column."""
    escaped = escape_csv(text)
    if position < len(fields) and fields[position] == escaped:
        return False
    if len(fields) < max(position + 1, width):
        fields.extend([""] * (max(position + 1, width) - len(fields)))
    fields[position] = escaped
    return True


def cell(fields: list[str], position: int | None) -> str:
    """The field at `position` ("" past the record's end or for no position)."""
    return fields[position] if position is not None and position < len(fields) else ""


def usable(encoding: str) -> bool:
    """Whether the streamed writes can handle a file in `encoding` (UTF-8, BOM or not)."""
    try:
        return codecs.lookup(encoding).name in UTF8
    except LookupError:
        return False
