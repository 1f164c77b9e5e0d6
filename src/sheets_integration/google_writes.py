"""Verified writes: values written through our column tags, checked in the same response.

One `values:batchUpdateByDataFilter` request carries, per column, one DataFilterValueRange
whose filter is the column's tag (or, for a column only watched, its place): the values run
down the column from the header (offset 0, always null: headers are never written here),
null where nothing is written. Google resolves the tag when it applies the request, so a
value can only land in a column carrying our tag, wherever that column is by then. The
answer (`includeValuesInResponse`) shows every column of the request as it stood at that
same instant: which job each written row held, and each header. A row that moved between
our read and the write is told by its `Job ID` (or, for job id writes, its input cells);
`repairs` then says which of the cells written there by mistake can be put back, because
their previous value is known from the read, and which cannot (those are left alone and
reported, never cleared).

Requests are split so the bytes sent stay under the limit, measured on the encoded body
(beyond the nulls that lead down to their rows).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sheets_integration.google_api import DataFilter, SheetsApi, encode
from sheets_integration.sheet import CellValue, cell_text

Identity = tuple[str, ...]


def same(a: Any, b: Any) -> bool:
    """Whether two cell values read alike: numbers by value, the rest by their text."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool | str):
        return float(a) == float(b)
    return text(a) == text(b)


def text(value: Any) -> str:
    """A value of a response as text ("" for an absent cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return cell_text(value)
    return str(value)


@dataclass(frozen=True)
class Column:
    """A column of a request: its key (normalized name), header name, and DataFilter."""

    key: str
    name: str
    data_filter: DataFilter


@dataclass
class Landing:
    """What a write request showed, at the instant it was applied.

    `seen[key][offset]`: the value after the write, at each offset the request wrote (for
    every column of the request, written or watched). `headers[key]`: the header cells
    seen (one per request; None when the answer did not show the header row).
    `unmatched`: columns whose filter matched nothing (the column, and its tag, were
    deleted).
    """

    seen: dict[str, dict[int, Any]] = field(default_factory=dict)
    headers: dict[str, list[Any]] = field(default_factory=dict)
    unmatched: set[str] = field(default_factory=set)


def _entry(column: Column, values: Mapping[int, CellValue], last: int) -> dict[str, Any]:
    line: list[CellValue | None] = [None] * (last + 1)
    for offset, value in values.items():
        line[offset] = value
    return {"dataFilter": column.data_filter, "majorDimension": "COLUMNS", "values": [line]}


def _body(
    columns: Sequence[Column],
    writes: Mapping[str, Mapping[int, CellValue]],
    offsets: Sequence[int],
    *,
    render: str,
) -> bytes:
    chosen = set(offsets)
    last = max(offsets)
    data = [
        _entry(c, {o: v for o, v in writes.get(c.key, {}).items() if o in chosen}, last)
        for c in columns
    ]
    return encode(
        {
            "valueInputOption": "RAW",
            "includeValuesInResponse": True,
            "responseValueRenderOption": render,
            "data": data,
        }
    )


@dataclass(frozen=True)
class Request:
    """One encoded write request and the offsets (rows) it writes."""

    offsets: tuple[int, ...]
    body: bytes


def _padding(columns: int, first: int) -> int:
    """The bytes of nulls any request writing from offset `first` carries above it (each
    column's values run from the header), however few cells it writes."""
    return columns * len("null,") * first


def _split(
    offsets: list[int], build: Callable[[Sequence[int]], bytes], limit: int, columns: int
) -> Iterator[Request]:
    body = build(offsets)
    if len(body) <= limit + _padding(columns, offsets[0]) or len(offsets) == 1:
        yield Request(tuple(offsets), body)
        return
    # Dropped before the halves are built: each level of the split would otherwise keep
    # its too-large body alive while the ones below it are made and sent.
    del body
    middle = len(offsets) // 2
    yield from _split(offsets[:middle], build, limit, columns)
    yield from _split(offsets[middle:], build, limit, columns)


def requests(
    columns: Sequence[Column],
    writes: Mapping[str, Mapping[int, CellValue]],
    *,
    render: str,
    limit: int,
) -> Iterator[Request]:
    """`writes` (column key -> offset -> value) as requests, rows in sheet order, each
    encoded when the one before has been taken; every column of `columns` rides along in
    each, so its answer shows them all. A request's bytes beyond the nulls that lead down
    to its first row stay under `limit` (a single row larger than that goes alone): rows
    far down a big sheet are not sent one request each because the nulls above them alone
    pass the limit."""
    offsets = sorted({o for values in writes.values() for o in values})
    if any(o < 1 for o in offsets):
        raise ValueError("offset 0 is the header row: headers are never written here")
    if not offsets:
        return iter(())
    build = functools.partial(_body, columns, writes, render=render)
    return _split(offsets, build, limit, len(columns))


def _first_row(a1_range: str) -> int:
    """The 0-based row an A1 range ("Sheet1!C1:C9") starts at (0 when it says none)."""
    start = a1_range.rpartition("!")[2].split(":")[0]
    digits = "".join(ch for ch in start if ch.isdigit())
    return int(digits) - 1 if digits else 0


def send(api: SheetsApi, columns: Sequence[Column], request: Request) -> Landing:
    """Send one request; what its answer shows of every column at the rows it wrote."""
    by_filter = {encode(c.data_filter): c for c in columns}
    landing = Landing()
    for response in api.update(request.body):
        column = by_filter.get(encode(response.get("dataFilter") or {}))
        if column is None:
            continue
        updated = response.get("updatedData") or {}
        data = updated.get("values") or [[]]
        line = data[0] if data else []
        first = _first_row(str(updated.get("range", "")))  # the answer may start lower down
        landing.headers.setdefault(column.key, []).append(
            (line[0] if line else "") if first == 0 else None
        )
        seen = landing.seen.setdefault(column.key, {})
        for offset in request.offsets:
            at = offset - first
            seen[offset] = line[at] if 0 <= at < len(line) else None
    landing.unmatched = {c.key for c in columns} - set(landing.headers)
    return landing


def moved(
    landing: Landing, intended: Mapping[int, Identity], identity: Sequence[str]
) -> dict[int, Identity]:
    """Offsets whose row, at the write, was not the intended one: offset -> its identity
    then (the values of the `identity` columns it showed)."""
    found: dict[int, Identity] = {}
    for offset, wanted in intended.items():
        seen = tuple(text(landing.seen.get(key, {}).get(offset)).strip() for key in identity)
        if seen != tuple(w.strip() for w in wanted):
            found[offset] = seen
    return found


@dataclass
class Repairs:
    """Cells written by mistake: those to put back (`restore`, key -> offset -> previous
    value) and those whose previous value is unknown (`unknown`: (key, offset, value))."""

    restore: dict[str, dict[int, CellValue]] = field(default_factory=dict)
    unknown: list[tuple[str, int, CellValue]] = field(default_factory=list)


def repairs(
    occupants: Mapping[int, Identity],
    writes: Mapping[str, Mapping[int, CellValue]],
    before: Mapping[int, Identity],
    previous: Mapping[str, Mapping[int, Any]],
    *,
    below: Identity | None = None,
) -> Repairs:
    """What to do about the cells written at `occupants` (offsets whose row was another).

    `before` is every row's identity as read before the write and `previous` the written
    columns' values then. The row that stood at an offset during the write is found in
    the read by its identity; a cell's previous value is known when every row of the read
    with that identity held the same value there (one row, or rows all empty alike).
    `below` is the identity rows under the read have (they were empty in every column):
    a row moved up from there counts among the candidates, with an empty cell.
    """
    result = Repairs()
    for offset, occupant in occupants.items():
        olds_of: dict[str, list[Any]] = {}
        candidates = [
            o for o, ident in before.items() if tuple(i.strip() for i in ident) == occupant
        ]
        for key, values in writes.items():
            if offset not in values:
                continue
            olds = olds_of.setdefault(key, [previous.get(key, {}).get(o) for o in candidates])
            if below is not None and occupant == below:
                olds = [*olds, None]
            if olds and all(same(olds[0], other) for other in olds[1:]):
                old = "" if olds[0] is None else olds[0]
                if not same(old, values[offset]):
                    result.restore.setdefault(key, {})[offset] = old
            else:
                result.unknown.append((key, offset, values[offset]))
    return result
