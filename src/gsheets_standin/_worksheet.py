"""One tab of a stand-in spreadsheet: a grid of stored cells, its layout, and their edits."""

from __future__ import annotations

import contextvars
import functools
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gsheets_standin import _journal
from gsheets_standin._a1 import Box
from gsheets_standin._cells import Cell, Formula, RichText, render, sort_key
from gsheets_standin._layout import Layout, Protection, move_target


def new_sheet_id() -> int:
    """A random sheet id (gid) like Google's."""
    return secrets.randbelow(2_000_000_000) + 1


class EditError(ValueError):
    """An edit the grid refuses (out of bounds, would delete every row...)."""


class ProtectedCell(EditError):
    """A request tried to change a cell of a range protected against its caller."""

    def __init__(self, protection: Protection) -> None:
        super().__init__(
            "You are trying to edit a protected cell or object. Please contact the "
            "spreadsheet owner to remove protection if you need to edit."
        )
        self.protection = protection


ACTOR: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "standin_actor", default=None
)
"""(caller, spreadsheet owner) while a request is executed: `Worksheet.write` enforces
protected ranges for that caller. Unset for edits made directly (tests playing the owner)."""


@dataclass
class Worksheet:
    """One tab: grid properties and stored cells (`rows` may be shorter than the grid)."""

    sheet_id: int
    title: str
    index: int = 0
    row_count: int = 1000
    column_count: int = 26
    frozen_row_count: int = 0
    frozen_column_count: int = 0
    hidden: bool = False
    rows: list[list[Cell]] = field(default_factory=list)
    layout: Layout = field(default_factory=Layout)

    def copy(self) -> Worksheet:
        """An independent copy (cells are immutable, so rows are copied shallowly)."""
        clone = Worksheet(
            self.sheet_id,
            self.title,
            self.index,
            self.row_count,
            self.column_count,
            self.frozen_row_count,
            self.frozen_column_count,
            self.hidden,
        )
        clone.rows = [row[:] for row in self.rows]
        clone.layout = self.layout.copy()
        return clone

    # ------------------------------------------------------------------ cells
    def get(self, row: int, col: int) -> Cell:
        """The stored cell at (row, col), 0-based; None when empty."""
        if row < len(self.rows) and col < len(self.rows[row]):
            return self.rows[row][col]
        return None

    def set(self, row: int, col: int, cell: Cell) -> None:
        """Store `cell` at (row, col), which must lie inside the grid."""
        if row >= self.row_count or col >= self.column_count:
            raise EditError(f"cell ({row}, {col}) is outside the grid")
        if cell is None and (row >= len(self.rows) or col >= len(self.rows[row])):
            return
        journal = _journal.current()
        if journal is not None:
            journal.record(self._undo_set(row, col))
        while len(self.rows) <= row:
            self.rows.append([])
        line = self.rows[row]
        if len(line) <= col:
            line.extend([None] * (col + 1 - len(line)))
        line[col] = cell

    def _undo_set(self, row: int, col: int) -> Callable[[], None]:
        """What puts (row, col), and the lengths of the rows it may extend, back as now."""
        height = len(self.rows)
        width = len(self.rows[row]) if row < height else 0
        previous = self.rows[row][col] if col < width else None
        rows = self.rows

        def undo() -> None:
            if row < height:
                line = rows[row]
                if col < width:
                    line[col] = previous
                del line[width:]
            del rows[height:]

        return undo

    def write(self, row: int, col: int, cell: Cell) -> bool:
        """Store `cell` as a request does: refused in a protected range, dropped under a merge.

        Returns False when the cell lies inside a merged range without being its top-left
        cell (Sheets keeps no value there).
        """
        actor = ACTOR.get()
        if actor is not None:
            protection = self.layout.protected_from(actor[0], actor[1], row, col)
            if protection is not None:
                raise ProtectedCell(protection)
        if self.layout.hidden_by_merge(row, col):
            return False
        self.set(row, col, cell)
        return True

    def merge(self, row0: int, col0: int, row1: int, col1: int) -> None:
        """Merge the box [row0, row1) x [col0, col1): only its top-left value is kept."""
        if not (0 <= row0 < row1 <= self.row_count and 0 <= col0 < col1 <= self.column_count):
            raise EditError("the merged range must lie inside the grid")
        if (row1 - row0) * (col1 - col0) < 2:
            return
        for box in self.layout.merges:
            assert box.row1 is not None and box.col1 is not None
            if row0 < box.row1 and box.row0 < row1 and col0 < box.col1 and box.col0 < col1:
                raise EditError("You can't merge cells that overlap an existing merge.")
        for r in range(row0, row1):
            for c in range(col0, col1):
                if (r, c) != (row0, col0):
                    self.set(r, c, None)
        self.layout.merges.append(Box(row0, col0, row1, col1))

    def unmerge(self, row0: int, col0: int, row1: int, col1: int) -> None:
        """Undo every merge intersecting the box."""
        self.layout.merges = [
            box
            for box in self.layout.merges
            if not (
                box.row1 is not None
                and box.col1 is not None
                and row0 < box.row1
                and box.row0 < row1
                and col0 < box.col1
                and box.col0 < col1
            )
        ]

    def used_extent(self) -> tuple[int, int]:
        """(rows, columns) up to the last non-empty cell."""
        rows = cols = 0
        for r, line in enumerate(self.rows):
            last = max((c + 1 for c, cell in enumerate(line) if cell is not None), default=0)
            if last:
                rows = r + 1
                cols = max(cols, last)
        return rows, cols

    def row_is_empty(self, row: int, col0: int = 0, col1: int | None = None) -> bool:
        """Whether row `row` has no value in columns [col0, col1)."""
        if row >= len(self.rows):
            return True
        return all(cell is None for cell in self.rows[row][col0:col1])

    def read(self, row0: int, col0: int, row1: int, col1: int, option: str) -> list[list[Any]]:
        """Rendered values of a box, row-major, with trailing empty cells and rows trimmed."""
        values: list[list[Any]] = []
        for r in range(row0, min(row1, len(self.rows))):
            line = self.rows[r][col0:col1]
            while line and line[-1] is None:
                line.pop()
            values.append([render(cell, option) for cell in line])
        while values and not values[-1]:
            values.pop()
        return values

    def formatted(self) -> list[list[str]]:
        """The whole used range as the user sees it (FORMATTED_VALUE)."""
        rows, cols = self.used_extent()
        return [[str(v) for v in line] for line in self.read(0, 0, rows, cols, "FORMATTED_VALUE")]

    def properties(self) -> dict[str, Any]:
        """SheetProperties as spreadsheets.get returns them."""
        grid: dict[str, Any] = {"rowCount": self.row_count, "columnCount": self.column_count}
        if self.frozen_row_count:
            grid["frozenRowCount"] = self.frozen_row_count
        if self.frozen_column_count:
            grid["frozenColumnCount"] = self.frozen_column_count
        props: dict[str, Any] = {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": self.index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }
        if self.hidden:
            props["hidden"] = True
        return props

    # ------------------------------------------------------------------ dimensions
    def insert_rows(self, at: int, count: int = 1) -> None:
        """Insert `count` empty rows before row `at` (0-based); the grid grows."""
        if not 0 <= at <= self.row_count or count < 1:
            raise EditError(f"cannot insert rows at {at}")
        if at < len(self.rows):
            self.rows[at:at] = [[] for _ in range(count)]
        self.row_count += count
        self.layout.inserted("ROWS", at, count)

    def delete_rows(self, start: int, end: int | None = None) -> None:
        """Delete rows [start, end) (one row when `end` is None); the grid shrinks."""
        end = start + 1 if end is None else end
        if not 0 <= start < end <= self.row_count:
            raise EditError(f"rows [{start}, {end}) are outside the grid")
        if end - start >= self.row_count:
            raise EditError("You can't delete all the rows on the sheet.")
        del self.rows[start:end]
        self.row_count -= end - start
        self.layout.deleted("ROWS", start, end)

    def insert_columns(self, at: int, count: int = 1) -> None:
        """Insert `count` empty columns before column `at`; the grid grows."""
        if not 0 <= at <= self.column_count or count < 1:
            raise EditError(f"cannot insert columns at {at}")
        for line in self.rows:
            if at < len(line):
                line[at:at] = [None] * count
        self.column_count += count
        self.layout.inserted("COLUMNS", at, count)

    def delete_columns(self, start: int, end: int | None = None) -> None:
        """Delete columns [start, end); the grid shrinks."""
        end = start + 1 if end is None else end
        if not 0 <= start < end <= self.column_count:
            raise EditError(f"columns [{start}, {end}) are outside the grid")
        if end - start >= self.column_count:
            raise EditError("You can't delete all the columns on the sheet.")
        for line in self.rows:
            del line[start:end]
        self.column_count -= end - start
        self.layout.deleted("COLUMNS", start, end)

    def move_rows(self, start: int, end: int, destination: int) -> None:
        """Move rows [start, end) before row `destination` (counted before the move)."""
        if not 0 <= start < end <= self.row_count or not 0 <= destination <= self.row_count:
            raise EditError(f"cannot move rows [{start}, {end}) to {destination}")
        while len(self.rows) < max(end, destination):
            self.rows.append([])
        block = self.rows[start:end]
        new_start = move_target(start, end, destination)
        del self.rows[start:end]
        self.rows[new_start:new_start] = block
        self.layout.moved("ROWS", start, end, destination)

    def move_columns(self, start: int, end: int, destination: int) -> None:
        """Move columns [start, end) before column `destination` (counted before the move)."""
        if not 0 <= start < end <= self.column_count or not 0 <= destination <= self.column_count:
            raise EditError(f"cannot move columns [{start}, {end}) to {destination}")
        new_start = move_target(start, end, destination)
        width = max(end, destination)
        for line in self.rows:
            if len(line) < width:
                line.extend([None] * (width - len(line)))
            block = line[start:end]
            del line[start:end]
            line[new_start:new_start] = block
        self.layout.moved("COLUMNS", start, end, destination)

    def resize(self, rows: int | None = None, cols: int | None = None) -> None:
        """Set the grid size; cells outside the new grid are dropped."""
        if rows is not None:
            if rows < 1:
                raise EditError("rowCount must be positive")
            del self.rows[rows:]
            self.row_count = rows
            self.layout.truncated(rows, self.column_count)
        if cols is not None:
            if cols < 1:
                raise EditError("columnCount must be positive")
            for line in self.rows:
                del line[cols:]
            self.column_count = cols
            self.layout.truncated(self.row_count, cols)

    def sort_rows(
        self,
        specs: Sequence[tuple[int, bool]],
        row0: int = 0,
        row1: int | None = None,
        col0: int = 0,
        col1: int | None = None,
    ) -> None:
        """Sort rows [row0, row1) of columns [col0, col1) by (column, ascending) specs.

        Empty cells sort last in either direction; cells outside the columns stay put.
        Values move, rows do not: row metadata, merges and protections stay where they are.
        """
        row1 = self.row_count if row1 is None else min(row1, self.row_count)
        col1 = self.column_count if col1 is None else min(col1, self.column_count)
        width = col1 - col0
        block = [[self.get(r, c) for c in range(col0, col1)] for r in range(row0, row1)]

        def compare(a: list[Cell], b: list[Cell]) -> int:
            for column, ascending in specs:
                x, y = a[column - col0], b[column - col0]
                if x is None or y is None:
                    if x is None and y is None:
                        continue
                    return 1 if x is None else -1
                kx, ky = sort_key(x), sort_key(y)
                if kx != ky:
                    result = -1 if kx < ky else 1
                    return result if ascending else -result
            return 0

        block.sort(key=functools.cmp_to_key(compare))
        for offset, line in enumerate(block):
            for c in range(width):
                self.set(row0 + offset, col0 + c, line[c])

    def sort_by(self, column: int, *, descending: bool = False, header_rows: int = 1) -> None:
        """Sort the data rows (below `header_rows`) by one 0-based column, as an operator would."""
        used, _ = self.used_extent()
        self.sort_rows([(column, not descending)], row0=header_rows, row1=max(used, header_rows))


def make_worksheet(
    title: str,
    sheet_id: int,
    index: int,
    values: Iterable[Sequence[Any]] = (),
    rows: int = 1000,
    cols: int = 26,
) -> Worksheet:
    """A worksheet filled with Python values stored as RAW input would store them.

    Strings starting with "=" become formulas only if given as `Formula`.
    """
    data = [list(line) for line in values]
    rows = max(rows, len(data))
    cols = max(cols, max((len(line) for line in data), default=0))
    ws = Worksheet(sheet_id, title, index, rows, cols)
    for r, line in enumerate(data):
        for c, value in enumerate(line):
            ws.set(r, c, _stored(value))
    return ws


def _stored(value: Any) -> Cell:
    if value is None or value == "":
        return None
    if isinstance(value, Formula | RichText | str | bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"cannot store {value!r} in a cell")
