"""Our columns on a Google worksheet: found by their tags, adopted, added, and read.

A column is ours to write when it carries our `sheetbatch.column` tag *and* its header
still names it. `sync` makes that true for the columns a write needs: a column whose
header has the name but no tag is adopted (tagged where it was read; the next snapshot
checks the header under the tag before anything is written through it), a stale tag (its
header renamed, or a second tag of the same name) is removed, and a missing column is
added in one atomic batchUpdate that inserts a fresh column after the used area, tags it
and writes its header, so the tag is on the new column whatever happened meanwhile.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gspread.utils import a1_to_rowcol

from sheets_integration import google_tags as tags
from sheets_integration.google_api import SheetsApi, encode
from sheets_integration.google_table import SheetState
from sheets_integration.google_tags import Tag
from sheets_integration.google_writes import Column, text
from sheets_integration.safety import used_width
from sheets_integration.sheet import normalize_header


@dataclass
class Snapshot:
    """Our columns as read at one instant (one request), by column key.

    `values[key][offset]`: offset 0 is the header row. `stale`: keys whose tag is gone
    (the column was deleted) or whose header no longer names the column.
    """

    index: dict[str, int] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)

    def at(self, key: str, offset: int) -> Any:
        """The value of column `key` at `offset` (None when empty)."""
        line = self.values.get(key, [])
        return line[offset] if offset < len(line) else None

    def height(self) -> int:
        """One past the last offset any column has a value at."""
        return max((len(v) for v in self.values.values()), default=1)


def column_of(a1_range: str) -> int:
    """The 0-based column where an A1 range ("Sheet1!E1:E1000") starts."""
    start = a1_range.rpartition("!")[2].split(":")[0]
    return int(a1_to_rowcol(start if any(c.isdigit() for c in start) else start + "1")[1]) - 1


class Columns:
    """The tagged columns of worksheet `sheet_id` that sheetbatch writes, by column key."""

    def __init__(self, api: SheetsApi, sheet_id: int) -> None:
        self.api = api
        self.sheet_id = sheet_id
        self.tags: dict[str, Tag] = {}
        self.added: tuple[int, list[str]] | None = None
        """(first index, names) of the columns the last `sync` inserted."""
        self.dropped: set[int] = set()
        """The metadataIds of the tags the last `sync` deleted."""

    def known(self, keys: Collection[str]) -> bool:
        """Whether every key has a tag we trust (until a snapshot says otherwise)."""
        return all(key in self.tags for key in keys)

    def forget(self, keys: Collection[str]) -> None:
        """Stop trusting the tags of `keys` (the next sync looks at them again)."""
        for key in keys:
            self.tags.pop(key, None)

    def sync(self, state: SheetState, names: Mapping[str, str], creatable: Collection[str]) -> bool:
        """Make each of `names` (key -> header name) a tagged column of ours, as far as the
        sheet `state` allows: adopt, clean up, add (`creatable` keys only). True when a
        request changed anything (`added` then says which columns were inserted, where).
        A key left untagged has no column to adopt or add."""
        self.added = None
        self.dropped = set()
        found: dict[str, list[Tag]] = {}
        for tag in state.tags:
            found.setdefault(normalize_header(tag.value), []).append(tag)
        requests: list[dict[str, Any]] = []
        placed: list[tuple[str, str, int, int]] = []  # key, name, column, reply index
        adding: list[tuple[str, str]] = []
        for key, name in names.items():
            position = state.table.index(name)
            mine = found.get(key, [])
            good = [t for t in mine if t.index == position][:1]
            for stale in (t for t in mine if t not in good):
                requests.append(tags.delete(stale.metadata_id))
                self.dropped.add(stale.metadata_id)
            if good:
                self.tags[key] = good[0]
                continue
            self.tags.pop(key, None)
            if position is not None:
                requests.append(
                    tags.create(tags.COLUMN_KEY, name, self.sheet_id, "COLUMNS", position)
                )
                placed.append((key, name, position, len(requests) - 1))
            elif key in creatable:
                adding.append((key, name))
        if adding:
            start = used_width(state.table)
            requests.append(
                {
                    "insertDimension": {
                        "range": {
                            "sheetId": self.sheet_id,
                            "dimension": "COLUMNS",
                            "startIndex": start,
                            "endIndex": start + len(adding),
                        },
                        "inheritFromBefore": start > 0,
                    }
                }
            )
            for i, (key, name) in enumerate(adding):
                requests.append(
                    tags.create(tags.COLUMN_KEY, name, self.sheet_id, "COLUMNS", start + i)
                )
                placed.append((key, name, start + i, len(requests) - 1))
            requests.append(
                {
                    "updateCells": {
                        "start": {"sheetId": self.sheet_id, "rowIndex": 0, "columnIndex": start},
                        "rows": [
                            {
                                "values": [
                                    {"userEnteredValue": {"stringValue": name}}
                                    for _, name in adding
                                ]
                            }
                        ],
                        "fields": "userEnteredValue",
                    }
                }
            )
        if not requests:
            return False
        replies = self.api.batch_update(requests)
        for key, name, column, at in placed:
            self.tags[key] = Tag(tags.created_id(replies[at]), name, column)
        if adding:
            self.added = (start, [name for _, name in adding])
        return True

    def snapshot(
        self, keys: Sequence[str], *, render: str, watch: Sequence[Column] = ()
    ) -> Snapshot:
        """The columns `keys` (all tagged), and the operator's columns `watch` (by place),
        as they stand now, in one request. A watched column whose header is not its name
        any more (it moved) is left out, not counted stale."""
        by_filter = {encode(tags.by_id(self.tags[key].metadata_id)): key for key in keys}
        by_filter.update({encode(c.data_filter): c.key for c in watch})
        names = {c.key: c.name for c in watch}
        snap = Snapshot()
        filters = [tags.by_id(self.tags[key].metadata_id) for key in keys]
        filters += [c.data_filter for c in watch]
        # Equal values held once: a column of a big sheet repeats its statuses and empty
        # cells ("succeeded" 100,000 times is one string, not 100,000).
        alike: dict[str, str] = {}
        for value_range, used in self.api.values(filters, render=render, major="COLUMNS"):
            for data_filter in used:
                key = by_filter.get(encode(data_filter))
                if key is None:
                    continue
                line = (value_range.get("values") or [[]])[0]
                header = normalize_header(text(line[0] if line else ""))
                values = [alike.setdefault(v, v) if type(v) is str else v for v in line]
                if key in names:
                    if header == normalize_header(names[key]):
                        snap.values[key] = values
                    continue
                snap.values[key] = values
                snap.index[key] = column_of(str(value_range.get("range", "A1")))
                if header != key:
                    snap.stale.add(key)
        snap.stale |= set(keys) - set(snap.values)
        return snap
