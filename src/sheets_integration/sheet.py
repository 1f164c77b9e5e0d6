"""The `Sheet` backend interface shared by the CSV, XLSX and Google Sheets backends."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

JOB_ID_COLUMN = "Job ID"
STATUS_COLUMN = "Status"
UPDATED_COLUMN = "Updated"
ERROR_COLUMN = "Error"
BOOKKEEPING_COLUMNS = (STATUS_COLUMN, JOB_ID_COLUMN, UPDATED_COLUMN, ERROR_COLUMN)


@functools.lru_cache(maxsize=4096)
def normalize_header(name: str) -> str:
    """Header names match case- and space-insensitively: " job  id" == "Job ID"."""
    return "".join(name.split()).casefold()


@dataclass(frozen=True)
class Table:
    """A sheet's header and data rows as literal strings.

    `rows[i]` is sheet row `i + 2` (row 1 is the header). Rows may be shorter than the
    header; a missing cell reads as "".
    """

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def index(self, column: str) -> int | None:
        """Position of `column` in the header (case/space-insensitive), or None."""
        # Asked for every cell a write touches: the header's positions are worked out once
        # (and again only if the header list was changed in place).
        key = tuple(self.header)
        cached = self.__dict__.get("_positions")
        if cached is None or cached[0] != key:
            positions: dict[str, int] = {}
            for position, name in enumerate(self.header):
                positions.setdefault(normalize_header(name), position)
            cached = (key, positions)
            object.__setattr__(self, "_positions", cached)
        return cached[1].get(normalize_header(column))

    def cell(self, row: int, column: str) -> str:
        """The value of `column` in data row `row` ("" when absent)."""
        position = self.index(column)
        if position is None or row >= len(self.rows):
            return ""
        values = self.rows[row]
        return values[position] if position < len(values) else ""

    def row_dict(self, row: int) -> dict[str, str]:
        """Data row `row` as {header name: value}."""
        values = self.rows[row]
        return {name: (values[i] if i < len(values) else "") for i, name in enumerate(self.header)}

    def job_rows(self) -> dict[str, int]:
        """Job ID -> data row index, as the sheet stands now."""
        position = self.index(JOB_ID_COLUMN)
        found: dict[str, int] = {}
        if position is None:
            return found
        for i, values in enumerate(self.rows):
            if position < len(values) and values[position].strip():
                found.setdefault(values[position].strip(), i)
        return found


@dataclass(frozen=True)
class WriteResult:
    """What a write did: cells written, and the job ids no longer found in the sheet."""

    cells: int = 0
    missing: frozenset[str] = frozenset()


@runtime_checkable
class Sheet(Protocol):
    """A spreadsheet the batch reads rows from and writes statuses and results into.

    Every write locates rows by the `Job ID` column as the sheet stands at that moment,
    never by a remembered row number, and writes values as literal text (never formulas).
    """

    @property
    def name(self) -> str:
        """A human-readable name for messages ("companies.csv", "<key>/Sheet1")."""
        ...

    def read(self) -> Table:
        """The whole used range as raw strings ("00123" stays "00123")."""
        ...

    def ensure_columns(self, columns: Sequence[str]) -> Table:
        """Append each of `columns` missing from the header (matched loosely); return the table."""
        ...

    def assign_job_ids(
        self, assignments: Mapping[int, str], expected: Mapping[int, Mapping[str, str]]
    ) -> set[int]:
        """Write job ids into the `Job ID` cell of data rows given by index.

        Before writing, each row is checked against `expected` (column -> value as read):
        a row that no longer matches (the operator sorted or inserted rows) is not written,
        and its index is returned so the caller can read again and retry. A row whose
        `Job ID` cell holds another id is refused unless `expected` names that id.
        """
        ...

    def write_by_job_id(self, updates: Mapping[str, Mapping[str, str]]) -> WriteResult:
        """Write {column: text} into the row whose `Job ID` is each key, as located now."""
        ...

    def close(self) -> None:
        """Release connections or handles (a no-op for local files)."""
        ...
