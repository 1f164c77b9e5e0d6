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
from collections.abc import Mapping, Sequence
from typing import overload

from progress.store import NewJob
from sheets_integration.sheet import Table


class PlannedJobs(Sequence[NewJob]):
    """A new job for each of `rows` (data row indexes of `table`), with its id, the inputs
    read from `columns` (pipeline input name -> sheet column) and its label; the same job
    (same id) every time it is asked for."""

    def __init__(self, table: Table, rows: Sequence[int], columns: Mapping[str, str]) -> None:
        self._table = table
        self._rows = array("I", rows)
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

    def by_row(self) -> dict[int, str]:
        """Data row index -> the id of its job."""
        return dict(zip(self._rows, self._ids, strict=True))

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
