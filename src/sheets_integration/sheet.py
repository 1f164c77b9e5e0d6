"""The `Sheet` backend interface shared by the CSV, XLSX and Google Sheets backends."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

JOB_ID_COLUMN = "Job ID"
STATUS_COLUMN = "Status"
UPDATED_COLUMN = "Updated"
ERROR_COLUMN = "Error"
BOOKKEEPING_COLUMNS = (STATUS_COLUMN, JOB_ID_COLUMN, UPDATED_COLUMN, ERROR_COLUMN)

#: What a write puts into a cell: text stays text (never a formula); a number lands as a
#: number (an XLSX numeric cell, a JSON number in Google Sheets), so SUM and sorting work.
CellValue = str | int | float


def cell_text(value: CellValue) -> str:
    """How a written value reads back as text (numbers as a spreadsheet shows them)."""
    if isinstance(value, bool):
        raise TypeError(f"not a cell value: {value!r}")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


@functools.lru_cache(maxsize=4096)
def normalize_header(name: str) -> str:
    """Header names match case- and space-insensitively: " job  id" == "Job ID"."""
    return "".join(name.split()).casefold()


@dataclass(frozen=True)
class Table:
    """A sheet's header and data rows as literal strings.

    `rows[i]` is sheet row `i + 2` (row 1 is the header). Rows may be shorter than the
    header; a missing cell reads as "". Walk `rows` in order (`for values in rows`) or
    index it; never copy all of it (`list(rows)`, `*rows`): a big sheet's rows are not
    meant to be in memory at once.
    """

    header: list[str]
    #: A list, or for a big local sheet a `SpilledRows` on disk: read-only either way.
    rows: Sequence[list[str]] = field(default_factory=list)
    #: Hyperlink targets of cells that carry one: (data row index, column index) -> URL.
    #: A cell showing "Acme site" that links to https://acme.example, or holding
    #: `=HYPERLINK("https://acme.example","Acme site")`.
    links: Mapping[tuple[int, int], str] = field(default_factory=dict)
    #: Cells that lie inside a merged range without being its top-left cell, so nothing can
    #: be written into them: (data row index, column index) -> the range, e.g. "C2:F2".
    merged: Mapping[tuple[int, int], str] = field(default_factory=dict)

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

    def target(self, row: int, column: str) -> str:
        """The cell's hyperlink target when it has one, else its text (for input values)."""
        position = self.index(column)
        if position is not None and (row, position) in self.links:
            return self.links[(row, position)]
        return self.cell(row, column)

    def row_dict(self, row: int) -> dict[str, str]:
        """Data row `row` as {header name: value}."""
        values = self.rows[row]
        return {name: (values[i] if i < len(values) else "") for i, name in enumerate(self.header)}

    def job_rows(self, column: str = JOB_ID_COLUMN) -> dict[str, int]:
        """Job ID -> data row index, as the sheet stands now (`column`: the Job ID column)."""
        position = self.index(column)
        found: dict[str, int] = {}
        if position is None:
            return found
        for i, values in enumerate(self.rows):
            if position < len(values) and values[position].strip():
                found.setdefault(values[position].strip(), i)
        return found


@dataclass(frozen=True)
class WriteResult:
    """What a write did.

    `cells`: cells that hold the requested values afterwards. `missing`: job ids no longer
    found in the sheet. `unwritable`: job id -> why some of its cells could not be written
    ("cell E2 is inside merged range C2:F2; not written"); the rest of the row was written.
    `kept`: cells of `fill_only` columns left as they were because they held another value
    (an operator's edit).
    """

    cells: int = 0
    missing: frozenset[str] = frozenset()
    unwritable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    kept: int = 0


class RowsAsRead(Mapping[int, Mapping[str, str]]):
    """Row index -> {column: value} of `columns` as `table` read them, for the rows of
    `rows`: each row's cells are looked up when asked for, so the rows of a big sheet are
    not copied into a dict each."""

    def __init__(self, table: Table, rows: Collection[int], columns: Sequence[str]) -> None:
        self._table = table
        self._rows = rows
        self._columns = columns

    def __getitem__(self, row: int) -> Mapping[str, str]:
        if row not in self._rows:
            raise KeyError(row)
        return {column: self._table.cell(row, column) for column in self._columns}

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


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

    def read_values(self) -> Table:
        """The cells' text only, as cheaply as the backend can (no hyperlinks, no merges):
        enough to tell which rows a run would select (a schedule's tick with nothing to do
        costs one read request per 25,000 rows on Google Sheets)."""
        ...

    def ensure_columns(self, columns: Sequence[str]) -> Table:
        """Append each of `columns` missing from the header (matched loosely); return the table."""
        ...

    def assign_job_ids(
        self,
        assignments: Mapping[int, str],
        expected: Mapping[int, Mapping[str, str]],
        *,
        job_column: str = JOB_ID_COLUMN,
    ) -> set[int]:
        """Write job ids into the `job_column` cell of data rows given by index.

        Before writing, each row is checked against `expected` (column -> value as read):
        a row that no longer matches (the operator sorted or inserted rows) is not written,
        and its index is returned so the caller can read again and retry. A row whose
        `Job ID` cell holds another id is refused unless `expected` names that id.
        """
        ...

    def write_by_job_id(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        *,
        job_column: str = JOB_ID_COLUMN,
        fill_only: Collection[str] = (),
    ) -> WriteResult:
        """Write {column: value} into the row whose `job_column` cell is each key, as located now.

        Cells of the columns named in `fill_only` are written only where the cell is empty
        (or already holds the value): an operator's edit there is kept and counted in
        `WriteResult.kept`. A cell that cannot be written (merged, protected) fails alone and
        is reported in `WriteResult.unwritable`; the rest of its row is written.
        """
        ...

    def close(self) -> None:
        """Release connections or handles (a no-op for local files)."""
        ...


@runtime_checkable
class TracksEdits(Protocol):
    """A sheet that knows whether anyone else changed it since it wrote it (a local file).

    The final flush of a batch reconciles every row only when `edited_by_others()`; a
    sheet without this method (Google Sheets, edited live by operators) always gets it.
    """

    def edited_by_others(self) -> bool:
        """False only when this object wrote the sheet and nobody changed it since."""
        ...


#: A piece of a flush: {job id: {column: value}} and the columns only filled where empty.
Piece = tuple[Mapping[str, Mapping[str, CellValue]], Collection[str]]


@runtime_checkable
class WritesPieces(Protocol):
    """A sheet that writes the pieces of a big flush together, in one pass over its file.

    A local file is rewritten whole by every write: a final flush of 500,000 rows in pieces
    of 10,000 would rewrite it 50 times. The sheet writer hands such a sheet every piece at
    once; the pieces are consumed as they come (never held together by the caller).
    """

    def write_pieces(self, pieces: Iterable[Piece], *, job_column: str = ...) -> WriteResult:
        """`write_by_job_id` of every piece, as one write; one `WriteResult` for them all."""
        ...
