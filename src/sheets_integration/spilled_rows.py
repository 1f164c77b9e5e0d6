"""`SpilledRows`: a local sheet's data rows kept on disk, not as a list of lists.

A CSV sheet of 500,000 rows held as `list[list[str]]` costs ~0.6 KB of Python objects per
row (300 MB), while a batch only ever looks at a few hundred rows at once. The rows are
appended once, as they are parsed, each as its `marshal` bytes into an anonymous temporary
file (the first MiB stays in memory, so a small sheet never touches the disk); an
`array('Q')` holds where each row starts (8 bytes a row), and a small LRU keeps the rows
decoded last, read ahead in blocks, so walking the rows in order costs one `pread` per
block.

`marshal` is exact for lists of `str` (any character, newlines and NULs included) and
fast; its format may change between Python versions, which does not matter for bytes that
live only as long as this process.
"""

from __future__ import annotations

import marshal
import os
import tempfile
import threading
import weakref
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, overload

#: Bytes kept in memory before the rows go to a temporary file.
_MEMORY_LIMIT = 1 << 20
#: Rows decoded at once when one is asked for (the ones after it are likely asked next).
_READ_AHEAD_ROWS = 128
_READ_AHEAD_BYTES = 1 << 16
#: Rows kept decoded: a few read-ahead blocks.
_CACHED_ROWS = 4 * _READ_AHEAD_ROWS
#: Bytes read at once by iteration.
_ITERATION_BYTES = 1 << 18


class SpilledRows(Sequence[list[str]]):
    """Rows of cells appended once (`append`, `extend`) and then read like a list; past
    `memory_limit` bytes they go to the temporary file.

    The lists handed out are shared with the cache: treat them as read-only (a table's rows
    are never edited in place; a write goes to the file). Reading is safe from several
    threads.
    """

    def __init__(
        self, rows: Iterable[list[str]] = (), *, memory_limit: int = _MEMORY_LIMIT
    ) -> None:
        self._memory_limit = memory_limit
        self._offsets = array("Q", [0])
        self._memory = bytearray()  # the bytes after `_spilled`, not in the file yet
        self._file: IO[bytes] | None = None
        self._spilled = 0
        self._cache: OrderedDict[int, list[str]] = OrderedDict()
        self._lock = threading.Lock()
        self.extend(rows)

    def append(self, row: list[str]) -> None:
        """Add `row` after the last one."""
        data = marshal.dumps(row)
        with self._lock:
            self._memory += data
            self._offsets.append(self._offsets[-1] + len(data))
            if len(self._memory) > self._memory_limit:
                self._spill()

    def extend(self, rows: Iterable[list[str]]) -> None:
        """`append` each of `rows`."""
        for row in rows:
            self.append(row)

    def _spill(self) -> None:
        if self._file is None:
            # Open as long as the rows are: closed when they are collected.
            self._file = tempfile.TemporaryFile(prefix="sheetbatch-rows-")  # noqa: SIM115
            weakref.finalize(self, self._file.close)
        os.pwrite(self._file.fileno(), self._memory, self._spilled)
        self._spilled += len(self._memory)
        self._memory.clear()

    def _read(self, start: int, end: int) -> bytes:
        """The stored bytes from `start` to `end` (called with the lock held)."""
        pieces: list[bytes] = []
        if start < self._spilled:
            assert self._file is not None
            stop = min(end, self._spilled)
            got = os.pread(self._file.fileno(), stop - start, start)
            if len(got) != stop - start:
                raise OSError(f"the rows' temporary file is short ({len(got)} bytes read)")
            pieces.append(got)
        if end > self._spilled:
            low = max(start, self._spilled) - self._spilled
            pieces.append(bytes(self._memory[low : end - self._spilled]))
        return b"".join(pieces)

    def _decode(self, first: int, last: int) -> list[list[str]]:
        """Rows `first` to `last` (exclusive), decoded (called with the lock held)."""
        base = self._offsets[first]
        data = memoryview(self._read(base, self._offsets[last]))
        return [
            marshal.loads(data[self._offsets[i] - base : self._offsets[i + 1] - base])
            for i in range(first, last)
        ]

    def _block_end(self, first: int, rows: int, size: int) -> int:
        """Where a block read from row `first` ends: at most `rows` rows and `size` bytes,
        and at least the one row."""
        end = min(len(self), first + rows)
        last = first + 1
        while last < end and self._offsets[last + 1] <= self._offsets[first] + size:
            last += 1
        return last

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, index: int) -> list[str]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[str]]: ...

    def __getitem__(self, index: int | slice) -> list[str] | list[list[str]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("row index out of range")
        with self._lock:
            row = self._cache.get(index)
            if row is not None:
                self._cache.move_to_end(index)
                return row
            last = self._block_end(index, _READ_AHEAD_ROWS, _READ_AHEAD_BYTES)
            for i, decoded in enumerate(self._decode(index, last), start=index):
                self._cache[i] = decoded
            while len(self._cache) > _CACHED_ROWS:
                self._cache.popitem(last=False)
            return self._cache[index]

    def __iter__(self) -> Iterator[list[str]]:
        # In order, the bytes of many rows at a time, past the cache (a walk over every row
        # must not push out the rows being worked on); each row decoded when it is reached.
        first, count = 0, len(self)
        while first < count:
            last = self._block_end(first, count, _ITERATION_BYTES)
            base = self._offsets[first]
            with self._lock:
                data = memoryview(self._read(base, self._offsets[last]))
            for i in range(first, last):
                yield marshal.loads(data[self._offsets[i] - base : self._offsets[i + 1] - base])
            first = last

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<SpilledRows: {len(self)} rows, {self._offsets[-1]} bytes>"
