"""`StreamedUpdate`: `write_by_job_id` on a CSV file, one record at a time.

A batch's writes while it runs touch a few hundred rows of a file that may hold 500,000:
the file is streamed record by record into its new version (`stream_rewrite`), each record
whose Job ID is among the updates is re-serialised with its new cells, and every other
record is copied as the file spells it. Nothing of the file is kept in memory, so memory
stays flat however big the sheet is.

The cells written are the ones `safety.plan_updates` would plan on the parsed table: the
row located by its Job ID as the file stands now (the first row carrying it), text
OWASP-escaped, `fill_only` cells left alone where the operator put another value. What the
stream cannot decide alone (a column to append, no Job ID column, a header it cannot read,
an encoding other than UTF-8) raises `NeedsDocument`: the caller then takes the parsed
path, which knows how.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO

from sheets_integration.csv_format import (
    SEP_LINE,
    Quoting,
    format_record,
    sniff_delimiter,
    sniff_quoting,
    terminator,
)
from sheets_integration.safety import escape_csv, validate_job_ids
from sheets_integration.sheet import (
    JOB_ID_COLUMN,
    CellValue,
    Table,
    WriteResult,
    cell_text,
    normalize_header,
)


class NeedsDocument(Exception):
    """The streamed write cannot do this one: use the parsed document instead."""


class _Records:
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
class _Csv:
    """A CSV file being read: how it is spelled, its header, and its data records to come."""

    bom: bool
    sep_line: str  # Excel's "sep=;" line as the file spells it, or ""
    delimiter: str
    quoting: Quoting
    header: Table
    header_raw: str
    records: Iterator[tuple[list[str], str]]

    def write_head(self, out: io.TextIOWrapper) -> None:
        """Copy everything before the first data record to `out`."""
        out.write(("\ufeff" if self.bom else "") + self.sep_line + self.header_raw)

    def index(self, column: str) -> int:
        position = self.header.index(column)
        if position is None:
            raise NeedsDocument  # a column to append: the parsed path knows where
        return position


@contextmanager
def _reading(source: BinaryIO) -> Iterator[_Csv]:
    """`source` (at its start) opened as CSV; what the stream cannot read raises
    `NeedsDocument` (the parsed path then says what is wrong with the file)."""
    bom = source.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
    if not bom:
        source.seek(0)
    text = io.TextIOWrapper(source, encoding="utf-8", errors="strict", newline="")
    try:
        lines: Iterator[str] = iter(text)
        first = next(lines, "")
        sep_line = SEP_LINE.match(first)
        if sep_line:
            delimiter = sep_line.group(1)
            sep_raw, first = first, next(lines, "")
        else:
            delimiter, sep_raw = sniff_delimiter(first), ""
        records = iter(_Records(chain([first], lines), delimiter))
        header, raw = next(records, ([], ""))
        if not any(header):
            raise NeedsDocument
        quoting = sniff_quoting(header, raw, delimiter)
        yield _Csv(bom, sep_raw, delimiter, quoting, Table(header=header), raw, records)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise NeedsDocument from exc
    finally:
        text.detach()


def _set(fields: list[str], position: int, text: str, width: int) -> bool:
    """Put `text` (escaped) into `fields[position]`; whether that changed the record. A
    record we write gets a field for every header column."""
    escaped = escape_csv(text)
    if position < len(fields) and fields[position] == escaped:
        return False
    if len(fields) < max(position + 1, width):
        fields.extend([""] * (max(position + 1, width) - len(fields)))
    fields[position] = escaped
    return True


def _cell(fields: list[str], position: int | None) -> str:
    return fields[position] if position is not None and position < len(fields) else ""


class StreamedUpdate:
    """One `write_by_job_id` call, run as a `stream_rewrite` edit (call it with the source
    and target streams)."""

    def __init__(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        *,
        job_column: str = JOB_ID_COLUMN,
        fill_only: Collection[str] = (),
    ) -> None:
        self.updates = updates
        self.job_column = job_column
        self.fill_keys = {normalize_header(column) for column in fill_only}
        job_key = normalize_header(job_column)
        if len({job_id.strip() for job_id in updates}) != len(updates):
            raise NeedsDocument  # two ids naming one row
        for values in updates.values():
            if any(normalize_header(column) == job_key for column in values):
                raise NeedsDocument  # the parsed path says why that is refused

    def __call__(self, source: BinaryIO, target: BinaryIO) -> tuple[bool, WriteResult]:
        out = io.TextIOWrapper(target, encoding="utf-8", newline="")
        try:
            with _reading(source) as sheet:
                result, changed = self._stream(sheet, out)
            out.flush()
        finally:
            out.detach()
        return changed, result

    def _stream(self, sheet: _Csv, out: io.TextIOWrapper) -> tuple[WriteResult, bool]:
        sheet.write_head(out)
        job_position = sheet.index(self.job_column)
        positions = {
            column: sheet.index(column) for values in self.updates.values() for column in values
        }
        wanted = {job_id.strip(): job_id for job_id in self.updates}
        found: set[str] = set()
        cells = kept = 0
        changed = False
        width = len(sheet.header.header)
        for fields, raw in sheet.records:
            key = _cell(fields, job_position).strip()
            job_id = wanted.get(key) if key else None
            if job_id is None or key in found:
                out.write(raw)
                continue
            found.add(key)
            edited = False
            for column, value in self.updates[job_id].items():
                position = positions[column]
                text = cell_text(value)
                current = _cell(fields, position)
                if normalize_header(column) in self.fill_keys and current not in ("", text):
                    kept += 1
                    continue
                cells += 1
                edited = _set(fields, position, text, width) or edited
            if edited:
                out.write(format_record(fields, sheet.delimiter, sheet.quoting) + terminator(raw))
                changed = True
            else:
                out.write(raw)
        missing = frozenset(job_id for key, job_id in wanted.items() if key not in found)
        return WriteResult(cells=cells, missing=missing, kept=kept), changed


class StreamedAssignment:
    """One `assign_job_ids` call, run as a `stream_rewrite` edit: the same rows refused as
    `safety.plan_job_ids` refuses on the parsed table (a first, read-only pass finds where
    the ids already sit; the second writes)."""

    def __init__(
        self,
        assignments: Mapping[int, str],
        expected: Mapping[int, Mapping[str, str]],
        *,
        job_column: str = JOB_ID_COLUMN,
    ) -> None:
        validate_job_ids(assignments)
        self.assignments = assignments
        self.expected = expected
        self.job_column = job_column

    def __call__(self, source: BinaryIO, target: BinaryIO) -> tuple[bool, set[int]]:
        ids = set(self.assignments.values())
        sitting: dict[str, int] = {}  # assigned id -> the first row carrying it now
        with _reading(source) as sheet:
            job_position = sheet.index(self.job_column)
            for row, (fields, _raw) in enumerate(sheet.records):
                key = _cell(fields, job_position).strip()
                if key in ids:
                    sitting.setdefault(key, row)
        source.seek(0)
        out = io.TextIOWrapper(target, encoding="utf-8", newline="")
        try:
            with _reading(source) as sheet:
                changed, refused = self._stream(sheet, out, sitting)
            out.flush()
        finally:
            out.detach()
        return changed, refused

    def _stream(
        self, sheet: _Csv, out: io.TextIOWrapper, sitting: Mapping[str, int]
    ) -> tuple[bool, set[int]]:
        sheet.write_head(out)
        job_position = sheet.index(self.job_column)
        job_key = normalize_header(self.job_column)
        width = len(sheet.header.header)
        refused: set[int] = set()
        changed = False
        rows = 0
        for row, (fields, raw) in enumerate(sheet.records):
            rows = row + 1
            job_id = self.assignments.get(row)
            if job_id is None:
                out.write(raw)
                continue
            wanted = self.expected.get(row, {})
            current = _cell(fields, job_position).strip()
            if current == job_id:
                out.write(raw)
                continue
            replacing = bool(current) and any(
                normalize_header(column) == job_key and value.strip() == current
                for column, value in wanted.items()
            )
            if (
                (current and not replacing)
                or sitting.get(job_id, row) != row
                or any(
                    _cell(fields, sheet.header.index(column)) != value
                    for column, value in wanted.items()
                )
            ):
                refused.add(row)
                out.write(raw)
            elif _set(fields, job_position, job_id, width):
                out.write(format_record(fields, sheet.delimiter, sheet.quoting) + terminator(raw))
                changed = True
            else:
                out.write(raw)
        refused.update(row for row in self.assignments if not 0 <= row < rows)
        return changed, refused


def usable(encoding: str) -> bool:
    """Whether the streamed write can handle a file in `encoding` (UTF-8, BOM or not)."""
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False
