"""`StreamedUpdate`, `StreamedAssignment`, `StreamedColumns`: a CSV file's writes, one
record at a time.

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
path, which knows how. `StreamedColumns` (`ensure_columns`) rewrites the header record
alone and copies the file's bytes after it.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Collection, Mapping, Sequence
from typing import BinaryIO

from sheets_integration.csv_format import format_record, terminator
from sheets_integration.csv_records import CsvStream, NeedsDocument, cell, reading, set_cell
from sheets_integration.safety import plan_columns, validate_job_ids
from sheets_integration.sheet import (
    JOB_ID_COLUMN,
    CellValue,
    Table,
    WriteResult,
    cell_text,
    normalize_header,
)
from sheets_integration.spilled_rows import SpilledRows


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
            with reading(source) as sheet:
                result, changed = self._stream(sheet, out)
            out.flush()
        finally:
            out.detach()
        return changed, result

    def _stream(self, sheet: CsvStream, out: io.TextIOWrapper) -> tuple[WriteResult, bool]:
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
            key = cell(fields, job_position).strip()
            job_id = wanted.get(key) if key else None
            if job_id is None or key in found:
                out.write(raw)
                continue
            found.add(key)
            edited = False
            for column, value in self.updates[job_id].items():
                position = positions[column]
                text = cell_text(value)
                current = cell(fields, position)
                if normalize_header(column) in self.fill_keys and current not in ("", text):
                    kept += 1
                    continue
                cells += 1
                edited = set_cell(fields, position, text, width) or edited
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
        self.ids = validate_job_ids(assignments)
        self.assignments = assignments
        self.expected = expected
        self.job_column = job_column

    def __call__(self, source: BinaryIO, target: BinaryIO) -> tuple[bool, set[int]]:
        sitting: dict[str, int] = {}  # assigned id -> the first row carrying it now
        with reading(source) as sheet:
            job_position = sheet.index(self.job_column)
            for row, (fields, _raw) in enumerate(sheet.records):
                key = cell(fields, job_position).strip()
                if key and key in self.ids:
                    sitting.setdefault(key, row)
        source.seek(0)
        out = io.TextIOWrapper(target, encoding="utf-8", newline="")
        try:
            with reading(source) as sheet:
                changed, refused = self._stream(sheet, out, sitting)
            out.flush()
        finally:
            out.detach()
        return changed, refused

    def _stream(
        self, sheet: CsvStream, out: io.TextIOWrapper, sitting: Mapping[str, int]
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
            current = cell(fields, job_position).strip()
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
                    cell(fields, sheet.header.index(column)) != value
                    for column, value in wanted.items()
                )
            ):
                refused.add(row)
                out.write(raw)
            elif set_cell(fields, job_position, job_id, width):
                out.write(format_record(fields, sheet.delimiter, sheet.quoting) + terminator(raw))
                changed = True
            else:
                out.write(raw)
        refused.update(row for row in self.assignments if not 0 <= row < rows)
        return changed, refused


class StreamedColumns:
    """One `ensure_columns` call, run as a `stream_rewrite` edit: the header gets each
    missing column after the used area (`safety.plan_columns`), every byte after the
    header is copied as it is, and the result is the table as written (its rows spilled,
    `SpilledRows`)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = columns

    def __call__(self, source: BinaryIO, target: BinaryIO) -> tuple[bool, Table]:
        with reading(source) as sheet:
            rows = SpilledRows(fields for fields, _raw in sheet.records)
        header = list(sheet.header.header)
        cells = plan_columns(Table(header=header, rows=rows), self.columns)
        if not cells:
            return False, Table(header=header, rows=rows)
        for new in cells:
            set_cell(header, new.column, new.text, len(header))
        out = io.TextIOWrapper(target, encoding="utf-8", newline="")
        try:
            record = format_record(header, sheet.delimiter, sheet.quoting)
            out.write(("\ufeff" if sheet.bom else "") + sheet.sep_line + record)
            out.write(terminator(sheet.header_raw))
            out.flush()
        finally:
            out.detach()
        # The stream read UTF-8 strictly, so the head's text encodes back to its bytes.
        source.seek(len(sheet.head().encode("utf-8")))
        shutil.copyfileobj(source, target)
        return True, Table(header=header, rows=rows)
