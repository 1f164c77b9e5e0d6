"""`SpilledUpdates`: the cells of a flush of many pieces, kept in a temporary database.

The final flush of a 500,000-row batch writes every row; the writer pages it from the
store in pieces so it never holds them all. A sheet that writes them in one pass over its
file (`WritesPieces`: an .xlsx workbook) needs every piece before the pass starts, and
looks each row's Job ID up as the row streams by: the pieces go into a temporary SQLite
file (one row per job, its cells `marshal`led), which answers those look-ups by its
primary key, so memory stays flat however many rows the flush writes.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from types import TracebackType

from sheets_integration.sheet import CellValue, normalize_header

#: Rows asked for or marked at once.
_BATCH = 1000


class SpilledUpdates:
    """Pieces of {job id: {column: value}}, each with its columns only filled where empty;
    an `xlsx_edit.Updates`. Use it as a context manager (the file goes at exit)."""

    def __init__(self) -> None:
        fd, self._path = tempfile.mkstemp(prefix="sheetbatch-updates-", suffix=".db")
        os.close(fd)
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-2048;"
            "CREATE TABLE updates (key TEXT PRIMARY KEY, given TEXT NOT NULL, cells BLOB NOT NULL,"
            " fill INTEGER NOT NULL, found INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
        )
        self._fills: list[frozenset[str]] = []
        self._fill_ids: dict[frozenset[str], int] = {}
        self._columns: set[str] = set()
        self._found: list[tuple[str]] = []
        self._count = 0

    def __enter__(self) -> SpilledUpdates:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._db.close()
        os.unlink(self._path)

    def __len__(self) -> int:
        return self._count

    def add(self, piece: Mapping[str, Mapping[str, CellValue]], fill_only: Collection[str]) -> None:
        """Keep `piece`; a job (or a row's Job ID, stripped) given twice keeps its last cells."""
        fill = frozenset(normalize_header(column) for column in fill_only)
        fill_id = self._fill_ids.get(fill)
        if fill_id is None:
            fill_id = self._fill_ids[fill] = len(self._fills)
            self._fills.append(fill)
        rows = []
        for job_id, cells in piece.items():
            self._columns.update(cells)
            rows.append((job_id.strip(), job_id, marshal.dumps(dict(cells)), fill_id))
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO updates VALUES (?, ?, ?, ?, 0)", rows)
        self._db.execute("COMMIT")
        (self._count,) = self._db.execute("SELECT count(*) FROM updates").fetchone()

    def get(self, job_id: str) -> tuple[str, Mapping[str, CellValue], Collection[str]] | None:
        found = self._db.execute(
            "SELECT given, cells, fill FROM updates WHERE key = ?", (job_id,)
        ).fetchone()
        if found is None:
            return None
        given, cells, fill = found
        return given, marshal.loads(cells), self._fills[fill]

    def columns(self) -> Collection[str]:
        return self._columns

    def found(self, job_id: str) -> None:
        self._found.append((job_id,))
        if len(self._found) >= _BATCH:
            self._mark()

    def _mark(self) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("UPDATE updates SET found = 1 WHERE key = ?", self._found)
        self._db.execute("COMMIT")
        self._found.clear()

    def missing(self) -> frozenset[str]:
        self._mark()
        return frozenset(
            given for (given,) in self._db.execute("SELECT given FROM updates WHERE found = 0")
        )

    def pieces(self) -> Iterator[tuple[dict[str, dict[str, CellValue]], frozenset[str]]]:
        """The updates again, in pieces of at most `_BATCH` jobs sharing their fill-only
        columns (for a sheet that writes them one piece at a time after all)."""
        for fill_id, fill in enumerate(self._fills):
            piece: dict[str, dict[str, CellValue]] = {}
            query = "SELECT given, cells FROM updates WHERE fill = ? ORDER BY key"
            for given, cells in self._db.execute(query, (fill_id,)):
                piece[given] = marshal.loads(cells)
                if len(piece) >= _BATCH:
                    yield piece, fill
                    piece = {}
            if piece:
                yield piece, fill


def spill(
    pieces: Iterable[tuple[Mapping[str, Mapping[str, CellValue]], Collection[str]]],
) -> SpilledUpdates:
    """Every piece of `pieces` in a new `SpilledUpdates`."""
    updates = SpilledUpdates()
    try:
        for piece, fill_only in pieces:
            updates.add(piece, fill_only)
    except BaseException:
        updates.__exit__(None, None, None)
        raise
    return updates
