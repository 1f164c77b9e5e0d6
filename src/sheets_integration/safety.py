"""The rules that make writing into an operator's spreadsheet safe.

Three promises, shared by the file backends (the pure planning parts suit any backend):

1. Values stay literal text. `escape_csv` applies the OWASP CSV-injection rule;
   `is_formula_like` tells the XLSX backend when to mark a string cell as quoted text.
2. Writes land on the rows that carry the job id *now*. `plan_updates` and `plan_job_ids`
   turn a freshly read `Table` plus the intended writes into cell writes; nothing is ever
   written to a remembered row number, and columns are appended after the used area.
3. A file is never half-written and a write never reverts an edit the operator saved
   meanwhile. `rewrite_file` reads, edits and atomically replaces the file under a
   per-file lock, and starts over if the file changed between the read and the replace.

CSV-injection decision: OWASP says to prefix *every* cell that starts with `=`, `+`, `-`,
`@`, tab or carriage return with `'`. We do that (and also for line feed, NUL and the
full-width `＝＋－＠`, which some spreadsheet locales treat the same), with one exception:
a cell that is entirely a plain decimal number (`-12`, `+3.5`, `-1e5`) is left alone —
a spreadsheet reads it as that number and it cannot carry a formula, so prefixing would
only mangle it. Anything else, e.g. the phone number `+1 555 0100`, is prefixed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TypeVar

from sheets_integration.a1 import cell_name
from sheets_integration.errors import (
    BadSheet,
    MissingColumn,
    SheetLocked,
    SheetNotFound,
    SheetWriteError,
)
from sheets_integration.file_versions import FileVersions
from sheets_integration.id_index import IdIndex
from sheets_integration.sheet import (
    JOB_ID_COLUMN,
    CellValue,
    Table,
    cell_text,
    normalize_header,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Excel's limit on the characters in one cell; longer values are clipped on write
#: (it also keeps our own CSV fields below the csv module's field size limit).
MAX_CELL_CHARS = 32_767

_FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\0＝＋－＠")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet could read `text` as a formula (see the module docstring)."""
    return bool(text) and text[0] in _FORMULA_TRIGGERS and not _PLAIN_NUMBER.fullmatch(text)


def clip(text: str) -> str:
    """`text` cut to `MAX_CELL_CHARS`, ending in "…" when it was cut."""
    if len(text) <= MAX_CELL_CHARS:
        return text
    return text[: MAX_CELL_CHARS - 1] + "…"


def escape_csv(text: str) -> str:
    """`text` as a CSV cell that no spreadsheet evaluates: a leading `'` when formula-like."""
    text = clip(text)
    return "'" + text if is_formula_like(text) else text


# --- planning: which cells to write, located in the table as it stands now -----------------


@dataclass(frozen=True)
class CellWrite:
    """One cell to write: data row index (`-1` is the header row), column index, value.

    `job_id` names the job the cell belongs to ("" for header cells and job id writes), so a
    backend can report a cell it cannot write against its row.
    """

    row: int
    column: int
    value: CellValue
    job_id: str = ""

    @property
    def text(self) -> str:
        """The value as text (how it reads back)."""
        return cell_text(self.value)


@dataclass(frozen=True)
class WritePlan:
    """The cells a write should change, and what it could not do.

    `cells` includes the header cells of appended columns (row `-1`). `missing` holds job
    ids not found in the sheet; `refused` the row indexes `plan_job_ids` would not write;
    `kept` counts `fill_only` cells left alone because they hold another value;
    `unwritable` the cells left out because nothing can be written there (merged cells).
    """

    cells: list[CellWrite] = field(default_factory=list)
    missing: frozenset[str] = frozenset()
    refused: frozenset[int] = frozenset()
    kept: int = 0
    #: job id -> why some of its cells are not planned ("cell E2 is inside merged range
    #: C2:F2; not written"); the rest of its row is.
    unwritable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def header_cells(self) -> list[CellWrite]:
        """The header cells of columns this plan appends."""
        return [cell for cell in self.cells if cell.row < 0]


def used_width(table: Table) -> int:
    """One past the rightmost column holding a non-empty cell in the header or any row."""
    width = 0
    for values in chain([table.header], table.rows):
        for position in range(len(values) - 1, width - 1, -1):
            if values[position] != "":
                width = position + 1
                break
    return width


def plan_columns(table: Table, columns: Iterable[str]) -> list[CellWrite]:
    """Header cells appending each of `columns` missing from the header (matched loosely).

    New columns go right after the used area, so they never label, and later overwrite,
    cells the operator keeps in unlabelled columns.
    """
    planned: dict[str, CellWrite] = {}
    next_position = used_width(table)
    for column in columns:
        if not column.strip():
            raise ValueError(f"column names must not be blank: {column!r}")
        key = normalize_header(column)
        if table.index(column) is None and key not in planned:
            planned[key] = CellWrite(-1, next_position, column)
            next_position += 1
    return list(planned.values())


def _column_positions(table: Table, new: list[CellWrite]) -> dict[str, int]:
    positions = {normalize_header(name): i for i, name in reversed(list(enumerate(table.header)))}
    positions.update({normalize_header(cell.text): cell.column for cell in new})
    return positions


def plan_updates(
    table: Table,
    updates: Mapping[str, Mapping[str, CellValue]],
    sheet: str,
    *,
    job_column: str = JOB_ID_COLUMN,
    fill_only: Collection[str] = (),
) -> WritePlan:
    """Cells for `write_by_job_id`: each job's row located by its `job_column` in `table`.

    Columns named in `updates` but absent from the header are appended (the operator may
    have deleted one mid-batch). Job ids not in the sheet come back in `missing`. Cells of
    `fill_only` columns are planned only where the cell is empty or already holds the
    value; the others are counted in `kept`. A cell inside a merged range (`table.merged`)
    is left out and named in `unwritable`; the rest of its row is planned. Raises
    `MissingColumn` when the sheet has no `job_column` at all.
    """
    if not updates:
        return WritePlan()
    if table.index(job_column) is None:
        raise MissingColumn(job_column, sheet, table.header)
    job_key = normalize_header(job_column)
    fill_keys = {normalize_header(column) for column in fill_only}
    rows = table.job_rows(job_column)
    located: list[tuple[int, str, Mapping[str, CellValue]]] = []
    missing: set[str] = set()
    for job_id, values in updates.items():
        if any(normalize_header(column) == job_key for column in values):
            raise ValueError(f"job {job_id}: write_by_job_id must not change the Job ID column")
        row = rows.get(job_id.strip())
        if row is None:
            missing.add(job_id)
        else:
            located.append((row, job_id, values))
    new = plan_columns(table, [column for _, _, values in located for column in values])
    positions = _column_positions(table, new)
    cells = list(new)
    kept = 0
    unwritable: dict[str, list[str]] = {}
    for row, job_id, values in located:
        for column, value in values.items():
            key = normalize_header(column)
            position = positions[key]
            merged = table.merged.get((row, position))
            if merged is not None:
                unwritable.setdefault(job_id, []).append(
                    f"cell {cell_name(row, position)} is inside merged range {merged}; not written"
                )
                continue
            if key in fill_keys:
                current = table.cell(row, column)
                if current != "" and current != cell_text(value):
                    kept += 1
                    continue
            cells.append(CellWrite(row, position, value, job_id))
    return WritePlan(
        cells=cells,
        missing=frozenset(missing),
        kept=kept,
        unwritable={job_id: tuple(reasons) for job_id, reasons in unwritable.items()},
    )


def validate_job_ids(assignments: Mapping[int, str]) -> IdIndex:
    """The assigned ids as a compact set; ValueError unless every id is usable (no blanks
    around it, not formula-like) and assigned to one row only."""
    for job_id in assignments.values():
        if not job_id or job_id != job_id.strip() or is_formula_like(job_id):
            raise ValueError(f"not a usable job id: {job_id!r}")
    ids = IdIndex(assignments.values())
    if ids.duplicate is not None:
        raise ValueError(f"job id {ids.duplicate!r} assigned to two rows")
    return ids


def plan_job_ids(
    table: Table,
    assignments: Mapping[int, str],
    expected: Mapping[int, Mapping[str, str]],
    *,
    job_column: str = JOB_ID_COLUMN,
) -> WritePlan:
    """Cells for `assign_job_ids`, refusing every row that is no longer the row the caller
    read (`judge_job_ids` says which)."""
    accepted: list[tuple[int, str]] = []
    refused: set[int] = set()
    for row, job_id, writable in judge_job_ids(table, assignments, expected, job_column=job_column):
        if writable:
            accepted.append((row, job_id))
        else:
            refused.add(row)
    new = plan_columns(table, [job_column]) if accepted else []
    position = _column_positions(table, new).get(normalize_header(job_column), -1)
    cells = new + [CellWrite(row, position, job_id) for row, job_id in accepted]
    return WritePlan(cells=cells, refused=frozenset(refused))


def judge_job_ids(
    table: Table,
    assignments: Mapping[int, str],
    expected: Mapping[int, Mapping[str, str]],
    *,
    job_column: str = JOB_ID_COLUMN,
) -> Iterator[tuple[int, str, bool]]:
    """Each assignment (row, id) in the order given, with whether its id may be written
    (False: the row is refused); a row that already carries its id is left out.

    A row is refused when it no longer exists, a cell named in `expected[row]` changed,
    its `Job ID` cell holds another id (unless `expected[row]` names that very id: the
    caller read it and means to replace it), or the id already sits on another row. Rows
    without an `expected` entry are checked for everything but content. Only the assigned
    ids found in the sheet are remembered, not every id it holds (a re-run of a
    500,000-row sheet would otherwise map each of its ids to a row).
    """
    ids = validate_job_ids(assignments)
    position = table.index(job_column)
    sitting: dict[str, int] = {}  # assigned id -> the first row carrying it now
    if position is not None:
        for i, values in enumerate(table.rows):
            key = values[position].strip() if position < len(values) else ""
            if key and key in ids:
                sitting.setdefault(key, i)
    job_key = normalize_header(job_column)
    for row, job_id in assignments.items():
        wanted = expected.get(row, {})
        current = table.cell(row, job_column).strip() if 0 <= row < len(table.rows) else None
        if current == job_id:
            continue
        replacing = bool(current) and any(
            normalize_header(column) == job_key and value.strip() == current
            for column, value in wanted.items()
        )
        yield (
            row,
            job_id,
            not (
                current is None
                or (current and not replacing)
                or sitting.get(job_id, row) != row
                or any(table.cell(row, column) != value for column, value in wanted.items())
            ),
        )


# --- files: per-file lock, office lock files, atomic replace --------------------------------

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def path_lock(path: Path) -> threading.Lock:
    """The in-process lock serialising writers of the file at `path` (however it is spelled)."""
    key = os.path.realpath(path)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def office_lock_file(path: Path) -> Path | None:
    """The lock file LibreOffice or Microsoft Office keeps next to `path` while it is open."""
    for name in (f".~lock.{path.name}#", f"~${path.name}", f"~${path.name[2:]}"):
        candidate = path.with_name(name)
        if name != "~$" and candidate.is_file():
            return candidate
    return None


def read_file(path: Path, sheet: str) -> tuple[bytes, os.stat_result]:
    """The bytes of `path` and the stat taken when they were read, errors translated."""
    try:
        with open(path, "rb") as stream:
            return stream.read(), os.fstat(stream.fileno())
    except FileNotFoundError as exc:
        raise SheetNotFound(str(path)) from exc
    except IsADirectoryError as exc:
        raise BadSheet(sheet, f"{path} is a directory", "give the path of a file") from exc
    except OSError as exc:
        raise BadSheet(sheet, f"cannot read {path}: {exc.strerror}", "check permissions") from exc


def _same_file_version(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def temp_beside(path: Path, sheet: str) -> tuple[int, str]:
    """A new temp file in `path`'s directory (so renaming it over `path` is atomic)."""
    try:
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise SheetWriteError(
            sheet, f"cannot create a file in {path.parent}: {exc.strerror}"
        ) from exc


@contextlib.contextmanager
def replacing(temp: str, sheet: str) -> Iterator[None]:
    """Around writing `temp` and renaming it into place: on any failure `temp` is removed,
    and an OS error becomes SheetLocked (permission: another program holds the file) or
    SheetWriteError."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, PermissionError):
            raise SheetLocked(sheet, "another program (is it open in Excel?)") from exc
        if isinstance(exc, OSError):
            raise SheetWriteError(sheet, exc.strerror or str(exc)) from exc
        raise


def atomic_write(path: Path, data: bytes, mode: int, sheet: str) -> os.stat_result:
    """Replace `path` by `data` all at once: temp file beside it, fsync, chmod `mode`, rename.

    Returns the stat of the file put in place (taken before the rename, so it is ours)."""
    fd, temp = temp_beside(path, sheet)
    with replacing(temp, sheet):
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
            written = os.fstat(stream.fileno())
        os.chmod(temp, stat.S_IMODE(mode))
        os.replace(temp, path)
    fsync_directory(path.parent)
    return written


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (not possible on every platform, and not fatal)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def rewrite_file(
    path: Path,
    sheet: str,
    edit: Callable[[bytes], tuple[bytes | None, T]],
    *,
    respect_lock_files: bool = True,
    attempts: int = 3,
    versions: FileVersions | None = None,
) -> T:
    """Read `path`, let `edit` turn its bytes into new bytes, and atomically replace the file.

    `edit` returns `(new bytes or None for "nothing to write", result)`; the result is
    returned. Writers in this process are serialised per file. If the file changes between
    the read and the replace (another program saved it), the edit is redone on the new
    content, up to `attempts` times, so the other program's edit is never undone.
    With `respect_lock_files`, a file open in LibreOffice or Office raises `SheetLocked`
    instead of being written (that program's next save would silently drop our write).
    `versions` is told the version of every read and of the file written.
    """
    target = Path(os.path.realpath(path))
    with path_lock(target):
        for attempt in range(1, attempts + 1):
            lock_file = office_lock_file(target) if respect_lock_files else None
            if lock_file is not None:
                raise SheetLocked(sheet, f"another program (lock file {lock_file.name})")
            data, before = read_file(target, sheet)
            if versions is not None:
                versions.seen(before)
            new, result = edit(data)
            if new is None:
                return result
            try:
                now = os.stat(target)
            except FileNotFoundError as exc:
                raise SheetNotFound(str(path), "it was deleted while we wrote it") from exc
            if not _same_file_version(before, now):
                log.info("%s changed while being written (attempt %d); redoing", sheet, attempt)
                continue
            written = atomic_write(target, new, before.st_mode, sheet)
            if versions is not None:
                versions.wrote(written)
            return result
    raise SheetWriteError(
        sheet,
        f"the file kept changing while we wrote it ({attempts} attempts)",
        "pause other programs writing it and try again",
    )
