"""The jobs planned for a sheet's rows, made when they are read rather than held.

A big sheet's preparation needs every planned job twice (recorded in the store, then its id
written into its row), but never all of them at once: each `NewJob` (its inputs as a dict) is
built from the table when it is asked for, and only the ids are kept - compactly: the rows as
an `array('I')` and each id as its 8 random bytes in one `bytes` (12 bytes per row, where a
`list[int]` and a `list[str]` of ids held ~110).
"""

from __future__ import annotations

import secrets
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from itertools import pairwise
from typing import overload

from progress.batch_writes import NewJob
from sheets_integration.sheet import Table


class PlannedJobs(Sequence[NewJob]):
    """A new job for each of `rows` (data row indexes of `table`), with its id, the inputs
    read from `columns` (pipeline input name -> sheet column) and its label; the same job
    (same id) every time it is asked for."""

    def __init__(self, table: Table, rows: Sequence[int], columns: Mapping[str, str]) -> None:
        self._table = table
        # In row order (the view by row looks rows up by bisection); a job's id is random,
        # so sorting gives each row the same kind of id it would have had.
        self._rows = array("I", rows if _ascending(rows) else sorted(rows))
        self._columns = dict(columns)
        self._ids = _JobIds(secrets.token_bytes(_ID_BYTES * len(self._rows)))

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> NewJob: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[NewJob]: ...

    def __getitem__(self, index: int | slice) -> NewJob | Sequence[NewJob]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = self._rows[index]
        table = self._table
        # Input values are what a cell links to (a hyperlinked website: its target).
        values = {name: table.target(row, column) for name, column in self._columns.items()}
        first = next(iter(self._columns.values()), None)
        label = table.cell(row, first) if first is not None else ""
        return NewJob(row=row + 2, inputs=values, label=label, job_id=self._ids[index])

    def by_row(self) -> Mapping[int, str]:
        """Data row index -> the id of its job: a view on the rows and ids held (a dict of
        a 500,000-row sheet's ids would hold ~70 MB)."""
        return _RowIds(self._rows, self._ids)

    def ids(self) -> Sequence[str]:
        """The jobs' ids, in row order (each made from its bytes when read)."""
        return self._ids


#: Random bytes of a job id: the same 64 bits `progress.store.new_job_id` draws.
_ID_BYTES = 8


class _JobIds(Sequence[str]):
    """Job ids ("j-" and 16 hex digits, as `new_job_id` makes them) held as their raw bytes."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    def __len__(self) -> int:
        return len(self._raw) // _ID_BYTES

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = index * _ID_BYTES
        return "j-" + self._raw[start : start + _ID_BYTES].hex()


def _ascending(rows: Sequence[int]) -> bool:
    return all(a < b for a, b in pairwise(rows))


class _RowIds(Mapping[int, str]):
    """Data row index -> job id over the planned rows (ascending) and their ids."""

    def __init__(self, rows: array[int], ids: _JobIds) -> None:
        self._rows = rows
        self._ids = ids

    def __getitem__(self, row: int) -> str:
        index = bisect_left(self._rows, row)
        if index == len(self._rows) or self._rows[index] != row:
            raise KeyError(row)
        return self._ids[index]

    def __contains__(self, row: object) -> bool:
        if not isinstance(row, int):
            return False
        index = bisect_left(self._rows, row)
        return index < len(self._rows) and self._rows[index] == row

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)
