"""What a worksheet anchors to its rows and columns, and how it moves when they move.

Merged ranges, protected ranges and developer metadata are attached to rows and columns,
not to cell values: Google moves them with `insertDimension`, `deleteDimension` and
`moveDimension` (and drops them with the rows or columns they were on), while `sortRange`
moves cell values only and leaves them where they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from gsheets_standin._a1 import Box

Dimension = Literal["ROWS", "COLUMNS"]
LocationKind = Literal["ROW", "COLUMN", "SHEET", "SPREADSHEET"]


class LayoutError(ValueError):
    """A dimension edit the grid refuses."""


def _after_insert(index: int, at: int, count: int) -> int:
    return index + count if index >= at else index


def _after_delete(index: int, start: int, end: int) -> int | None:
    if start <= index < end:
        return None
    return index - (end - start) if index >= end else index


def move_target(start: int, end: int, destination: int) -> int:
    """Where a block [start, end) begins after `moveDimension` to `destination`.

    `destination` counts in the coordinates before the block is taken out, as Google's
    `MoveDimensionRequest.destinationIndex` does.
    """
    if destination >= end:
        return destination - (end - start)
    if destination <= start:
        return destination
    raise LayoutError(f"destinationIndex {destination} lies inside the moved range")


def after_move(index: int, start: int, end: int, destination: int) -> int:
    """Where `index` is after the block [start, end) moved to `destination`."""
    new_start = move_target(start, end, destination)
    if start <= index < end:
        return new_start + index - start
    rest = index if index < start else index - (end - start)
    return rest + (end - start) if rest >= new_start else rest


@dataclass(frozen=True)
class Span:
    """A half-open run of rows or columns; `end` None runs to the grid's edge."""

    start: int
    end: int | None

    def inserted(self, at: int, count: int) -> Span:
        if at <= self.start:
            return Span(self.start + count, None if self.end is None else self.end + count)
        if self.end is None or at < self.end:
            return Span(self.start, None if self.end is None else self.end + count)
        return self

    def deleted(self, start: int, end: int) -> Span | None:
        def shift(x: int) -> int:
            return x - max(0, min(x, end) - start)

        new_end = None if self.end is None else shift(self.end)
        new_start = shift(self.start)
        if new_end is not None and new_end <= new_start:
            return None
        return Span(new_start, new_end)

    def moved(self, start: int, end: int, destination: int) -> Span:
        if self.end is None:
            return self
        inside = start <= self.start and self.end <= end
        outside = self.end <= start or self.start >= end
        if not (inside or outside):
            # A move that splits the span: Google refuses such moves for merges; keep it.
            return self
        first = after_move(self.start, start, end, destination)
        last = after_move(self.end - 1, start, end, destination)
        return Span(first, last + 1) if last - first == self.end - 1 - self.start else self


def _box_spans(box: Box, dimension: Dimension) -> Span:
    if dimension == "ROWS":
        return Span(box.row0, box.row1)
    return Span(box.col0, box.col1)


def _with_span(box: Box, dimension: Dimension, span: Span) -> Box:
    if dimension == "ROWS":
        return replace(box, row0=span.start, row1=span.end)
    return replace(box, col0=span.start, col1=span.end)


@dataclass
class Protection:
    """A protected range: only `editors` (and the owner) may change its cells."""

    range_id: int
    box: Box
    description: str = ""
    warning_only: bool = False
    editors: frozenset[str] = frozenset()

    def covers(self, row: int, col: int) -> bool:
        box = self.box
        return (
            box.row0 <= row
            and (box.row1 is None or row < box.row1)
            and box.col0 <= col
            and (box.col1 is None or col < box.col1)
        )


@dataclass
class Anchor:
    """Developer metadata: on a row or column (`index`) or a sheet (kept in its worksheet's
    layout), or on the spreadsheet (kept by the spreadsheet)."""

    metadata_id: int
    key: str
    value: str | None
    visibility: str
    project: str
    kind: LocationKind
    index: int = 0


@dataclass
class Layout:
    """A worksheet's merges, protected ranges and developer metadata."""

    merges: list[Box] = field(default_factory=list)
    protections: list[Protection] = field(default_factory=list)
    metadata: list[Anchor] = field(default_factory=list)

    def copy(self) -> Layout:
        """An independent copy."""
        return Layout(
            list(self.merges),
            [replace(p) for p in self.protections],
            [replace(m) for m in self.metadata],
        )

    def _dimension_anchors(self, dimension: Dimension) -> list[Anchor]:
        kind = "ROW" if dimension == "ROWS" else "COLUMN"
        return [m for m in self.metadata if m.kind == kind]

    def inserted(self, dimension: Dimension, at: int, count: int) -> None:
        """Rows or columns [at, at + count) were inserted."""
        for anchor in self._dimension_anchors(dimension):
            anchor.index = _after_insert(anchor.index, at, count)
        self._boxes(dimension, lambda span: span.inserted(at, count))

    def deleted(self, dimension: Dimension, start: int, end: int) -> None:
        """Rows or columns [start, end) were deleted: what was on them goes with them."""
        kept: list[Anchor] = []
        for anchor in self.metadata:
            if anchor.kind == ("ROW" if dimension == "ROWS" else "COLUMN"):
                index = _after_delete(anchor.index, start, end)
                if index is None:
                    continue
                anchor.index = index
            kept.append(anchor)
        self.metadata = kept
        self._boxes(dimension, lambda span: span.deleted(start, end))

    def moved(self, dimension: Dimension, start: int, end: int, destination: int) -> None:
        """Rows or columns [start, end) were moved to `destination` (pre-move coordinates)."""
        for anchor in self._dimension_anchors(dimension):
            anchor.index = after_move(anchor.index, start, end, destination)
        self._boxes(dimension, lambda span: span.moved(start, end, destination))

    def truncated(self, rows: int, cols: int) -> None:
        """The grid shrank to `rows` x `cols`: anchors beyond it are gone."""
        self.deleted("ROWS", rows, 10**9)
        self.deleted("COLUMNS", cols, 10**9)

    def _boxes(self, dimension: Dimension, change: Callable[[Span], Span | None]) -> None:
        merges: list[Box] = []
        for box in self.merges:
            span = change(_box_spans(box, dimension))
            if span is not None:
                merges.append(_with_span(box, dimension, span))
        self.merges = merges
        protections: list[Protection] = []
        for protection in self.protections:
            span = change(_box_spans(protection.box, dimension))
            if span is not None:
                protection.box = _with_span(protection.box, dimension, span)
                protections.append(protection)
        self.protections = protections

    # ------------------------------------------------------------------ merges
    def merge_at(self, row: int, col: int) -> Box | None:
        """The merged range containing (row, col), if any."""
        for box in self.merges:
            assert box.row1 is not None and box.col1 is not None
            if box.row0 <= row < box.row1 and box.col0 <= col < box.col1:
                return box
        return None

    def hidden_by_merge(self, row: int, col: int) -> bool:
        """Whether (row, col) lies inside a merge without being its top-left cell."""
        box = self.merge_at(row, col)
        return box is not None and (box.row0, box.col0) != (row, col)

    def protected_from(self, user: str, owner: str, row: int, col: int) -> Protection | None:
        """The protection that forbids `user` to change (row, col), if any."""
        if user == owner:
            return None
        for protection in self.protections:
            if protection.warning_only or user in protection.editors:
                continue
            if protection.covers(row, col):
                return protection
        return None
