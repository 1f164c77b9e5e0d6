"""`SpilledRows`: a local sheet's data rows kept on disk, not as a list of lists.

A CSV sheet of 500,000 rows held as `list[list[str]]` costs ~0.6 KB of Python objects per
row (300 MB), while a batch only ever looks at a few hundred rows at once. The rows are
appended once, as they are parsed, each as its `marshal` bytes after a 4-byte length, into
an anonymous temporary file (the first MiB stays in memory, so a small sheet never touches
the disk). Rows are found by block: an `array('Q')` holds where each block of 128 rows
starts (8 bytes per 128 rows: 31 KB for 500,000 rows, where an offset a row took 4 MB), and
a small LRU keeps the blocks' rows decoded last, so reading a row costs one `pread` of its
block and walking the rows in order one `pread` per block.

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
#: Rows a block holds: they are read and decoded together (the ones after a row asked for
#: are likely asked next).
_BLOCK_ROWS = 128
#: Rows kept decoded: a few blocks.
_CACHED_ROWS = 4 * _BLOCK_ROWS
_LENGTH = 4  # bytes of the length before each row's marshal bytes


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
        self._starts = array("Q")  # where each block of _BLOCK_ROWS rows starts
        self._count = 0
        self._end = 0  # bytes stored
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
            if self._count % _BLOCK_ROWS == 0:
                self._starts.append(self._end)
            self._memory += len(data).to_bytes(_LENGTH, "little")
            self._memory += data
            self._end += _LENGTH + len(data)
            self._count += 1
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

    def _block(self, block: int) -> list[list[str]]:
        """The rows of block `block`, decoded (called with the lock held)."""
        start = self._starts[block]
        end = self._starts[block + 1] if block + 1 < len(self._starts) else self._end
        data = memoryview(self._read(start, end))
        rows: list[list[str]] = []
        at = 0
        while at < len(data):
            size = int.from_bytes(data[at : at + _LENGTH], "little")
            at += _LENGTH
            rows.append(marshal.loads(data[at : at + size]))
            at += size
        return rows

    def __len__(self) -> int:
        return self._count

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
            first = index - index % _BLOCK_ROWS
            for i, decoded in enumerate(self._block(first // _BLOCK_ROWS), start=first):
                self._cache[i] = decoded
            while len(self._cache) > _CACHED_ROWS:
                self._cache.popitem(last=False)
            return self._cache[index]

    def __iter__(self) -> Iterator[list[str]]:
        # In order, a block at a time, past the cache (a walk over every row must not push
        # out the rows being worked on): the rows there were when the walk began.
        left = len(self)
        block = 0
        while left > 0:
            with self._lock:
                rows = self._block(block)[:left]
            yield from rows
            left -= len(rows)
            block += 1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<SpilledRows: {len(self)} rows, {self._end} bytes>"
