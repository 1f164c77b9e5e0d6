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
from itertools import chain
from typing import BinaryIO

from sheets_integration.csv_format import (
    SEP_LINE,
    format_record,
    sniff_delimiter,
    sniff_quoting,
    terminator,
)
from sheets_integration.safety import escape_csv
from sheets_integration.sheet import CellValue, Table, WriteResult, cell_text, normalize_header


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


class StreamedUpdate:
    """One `write_by_job_id` call, run as a `stream_rewrite` edit (call it with the source
    and target streams)."""

    def __init__(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        sheet: str,
        *,
        job_column: str,
        fill_only: Collection[str] = (),
    ) -> None:
        self.updates = updates
        self.sheet = sheet
        self.job_column = job_column
        self.fill_keys = {normalize_header(column) for column in fill_only}
        job_key = normalize_header(job_column)
        if len({job_id.strip() for job_id in updates}) != len(updates):
            raise NeedsDocument  # two ids naming one row
        for values in updates.values():
            if any(normalize_header(column) == job_key for column in values):
                raise NeedsDocument  # the parsed path says why that is refused

    def __call__(self, source: BinaryIO, target: BinaryIO) -> tuple[bool, WriteResult]:
        bom = source.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
        if not bom:
            source.seek(0)
        text = io.TextIOWrapper(source, encoding="utf-8", errors="strict", newline="")
        out = io.TextIOWrapper(target, encoding="utf-8", newline="")
        try:
            result, changed = self._stream(text, out, bom)
            out.flush()
        except UnicodeDecodeError as exc:
            raise NeedsDocument from exc  # the parsed path names the byte
        except csv.Error as exc:
            raise NeedsDocument from exc  # ... and the malformed record
        finally:
            text.detach()
            out.detach()
        return changed, result

    def _stream(
        self, text: io.TextIOWrapper, out: io.TextIOWrapper, bom: bool
    ) -> tuple[WriteResult, bool]:
        if bom:
            out.write("\ufeff")
        lines: Iterator[str] = iter(text)
        first = next(lines, "")
        sep_line = SEP_LINE.match(first)
        if sep_line:
            out.write(first)
            delimiter = sep_line.group(1)
            first = next(lines, "")
        else:
            delimiter = sniff_delimiter(first)
        records = iter(_Records(chain([first], lines), delimiter))
        header, raw = next(records, ([], ""))
        if not any(header):
            raise NeedsDocument  # no header: the parsed path says so
        out.write(raw)
        quoting = sniff_quoting(header, raw, delimiter)
        table = Table(header=header)
        job_position = table.index(self.job_column)
        positions = {
            column: table.index(column) for values in self.updates.values() for column in values
        }
        if job_position is None or None in positions.values():
            raise NeedsDocument  # a column to append, or none to locate rows by
        wanted = {job_id.strip(): job_id for job_id in self.updates}
        found: set[str] = set()
        cells = kept = 0
        changed = False
        width = len(header)
        for fields, raw in records:
            key = fields[job_position].strip() if job_position < len(fields) else ""
            job_id = wanted.get(key) if key else None
            if job_id is None or key in found:
                out.write(raw)
                continue
            found.add(key)
            edited = False
            for column, value in self.updates[job_id].items():
                position = positions[column]
                assert position is not None
                current = fields[position] if position < len(fields) else ""
                if normalize_header(column) in self.fill_keys and current not in (
                    "",
                    cell_text(value),
                ):
                    kept += 1
                    continue
                cells += 1
                escaped = escape_csv(cell_text(value))
                if position < len(fields) and current == escaped:
                    continue
                if len(fields) < max(position + 1, width):
                    # A record we write gets a field for every header column.
                    fields.extend([""] * (max(position + 1, width) - len(fields)))
                fields[position] = escaped
                edited = True
            if edited:
                out.write(format_record(fields, delimiter, quoting) + terminator(raw))
                changed = True
            else:
                out.write(raw)
        missing = frozenset(job_id for key, job_id in wanted.items() if key not in found)
        return WriteResult(cells=cells, missing=missing, kept=kept), changed


def usable(encoding: str) -> bool:
    """Whether the streamed write can handle a file in `encoding` (UTF-8, BOM or not)."""
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False
