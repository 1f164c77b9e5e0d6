"""The stand-in's spreadsheets: their worksheets, sharing, owner and developer metadata."""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from gsheets_standin._a1 import Box
from gsheets_standin._layout import Anchor, Protection
from gsheets_standin._worksheet import (
    ACTOR,
    EditError,
    ProtectedCell,
    Worksheet,
    make_worksheet,
    new_sheet_id,
)

MAX_CELLS = 10_000_000
_KEY_ALPHABET = string.ascii_letters + string.digits + "-_"


def new_spreadsheet_id() -> str:
    """A random 44-character key like Google's."""
    return "1" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(43))


@dataclass
class Spreadsheet:
    """A spreadsheet: its worksheets and the accounts it is shared with."""

    spreadsheet_id: str
    title: str
    sheets: list[Worksheet]
    shared_with: set[str] = field(default_factory=set)
    locale: str = "en_US"
    time_zone: str = "Etc/GMT"
    owner: str = "owner@example.com"
    """The account that owns the file: it may always edit, protected ranges included."""
    metadata: list[Anchor] = field(default_factory=list)
    """Developer metadata on the spreadsheet itself (row, column and sheet metadata live
    in each worksheet's layout)."""
    _ids_taken: set[int] = field(default_factory=set, init=False, repr=False, compare=False)
    """Every metadataId seen in use (a superset: ids deleted since stay in it)."""
    _ids_counted: int = field(default=-1, init=False, repr=False, compare=False)
    """How many entries there were when `_ids_taken` was last brought up to date."""

    @classmethod
    def created_by(cls, email: str, payload: dict[str, Any]) -> Spreadsheet:
        """A new spreadsheet as spreadsheets.create makes it, owned by `email`."""
        props = payload.get("properties") or {}
        worksheets = []
        for i, sheet in enumerate(payload.get("sheets") or [{}]):
            sp = (sheet or {}).get("properties") or {}
            grid = sp.get("gridProperties") or {}
            worksheets.append(
                make_worksheet(
                    sp.get("title") or f"Sheet{i + 1}",
                    int(sp.get("sheetId", 0 if i == 0 else new_sheet_id())),
                    i,
                    rows=int(grid.get("rowCount", 1000)),
                    cols=int(grid.get("columnCount", 26)),
                )
            )
        title = props.get("title") or "Untitled spreadsheet"
        return cls(new_spreadsheet_id(), title, worksheets, {email}, owner=email)

    def copy(self) -> Spreadsheet:
        """An independent copy, for all-or-nothing updates."""
        return Spreadsheet(
            self.spreadsheet_id,
            self.title,
            [s.copy() for s in self.sheets],
            set(self.shared_with),
            self.locale,
            self.time_zone,
            self.owner,
            [replace(m) for m in self.metadata],
        )

    def anchors(self) -> list[tuple[Worksheet | None, Anchor]]:
        """Every developer metadata entry with its worksheet (None: on the spreadsheet)."""
        found: list[tuple[Worksheet | None, Anchor]] = [(None, m) for m in self.metadata]
        for ws in self.ordered():
            found.extend((ws, m) for m in ws.layout.metadata)
        return found

    def new_metadata_id(self) -> int:
        """A positive int32 id no developer metadata of this spreadsheet has.

        The ids in use are gathered again only when the number of entries changed other
        than by the id handed out last, so tagging 100,000 rows in one batchUpdate costs
        no scan of every entry per new one.
        """
        count = len(self.metadata) + sum(len(ws.layout.metadata) for ws in self.sheets)
        if count != self._ids_counted:
            self._ids_taken.update(m.metadata_id for _, m in self.anchors())
        while True:
            candidate = secrets.randbelow(2**31 - 2) + 1
            if candidate not in self._ids_taken:
                self._ids_taken.add(candidate)
                self._ids_counted = count + 1
                return candidate

    def new_protected_range_id(self) -> int:
        """A positive int32 id no protected range of this spreadsheet has."""
        taken = {p.range_id for ws in self.sheets for p in ws.layout.protections}
        while True:
            candidate = secrets.randbelow(2**31 - 2) + 1
            if candidate not in taken:
                return candidate

    def protect(
        self,
        ws: Worksheet,
        box: Box,
        *,
        editors: Iterable[str] = (),
        description: str = "",
        warning_only: bool = False,
    ) -> Protection:
        """Protect `box` of `ws`: from then on only `editors` and the owner may change it."""
        protection = Protection(
            self.new_protected_range_id(), box, description, warning_only, frozenset(editors)
        )
        ws.layout.protections.append(protection)
        return protection

    def duplicate(self, source: Worksheet, title: str, index: int | None = None) -> Worksheet:
        """A copy of `source` as a new tab: cells, merges, protections and its developer
        metadata (under new ids), as the Sheets UI's "Duplicate" makes it."""
        if self.find(title) is not None:
            raise EditError(f'A sheet with the name "{title}" already exists.')
        clone = source.copy()
        clone.sheet_id = new_sheet_id()
        while self.by_id(clone.sheet_id) is not None:
            clone.sheet_id = new_sheet_id()
        clone.title = title
        for anchor in clone.layout.metadata:
            anchor.metadata_id = self.new_metadata_id()
        for protection in clone.layout.protections:
            protection.range_id = self.new_protected_range_id()
        position = source.index + 1 if index is None else index
        for ws in self.sheets:
            if ws.index >= position:
                ws.index += 1
        clone.index = position
        self.sheets.append(clone)
        self.reindex()
        return clone

    def ordered(self) -> list[Worksheet]:
        """Worksheets in tab order."""
        return sorted(self.sheets, key=lambda s: s.index)

    def sheet(self, title: str | None = None) -> Worksheet:
        """The worksheet titled `title` (case-insensitively), or the first one; KeyError if none."""
        if title is None:
            return self.ordered()[0]
        found = self.find(title)
        if found is None:
            raise KeyError(title)
        return found

    def find(self, title: str) -> Worksheet | None:
        """The worksheet titled `title`: exact match first, then case-insensitive."""
        for ws in self.sheets:
            if ws.title == title:
                return ws
        folded = title.casefold()
        for ws in self.sheets:
            if ws.title.casefold() == folded:
                return ws
        return None

    def by_id(self, sheet_id: int) -> Worksheet | None:
        """The worksheet whose sheetId is `sheet_id`."""
        return next((ws for ws in self.sheets if ws.sheet_id == sheet_id), None)

    def reindex(self) -> None:
        """Renumber tab indexes 0..n-1 in their current order."""
        for i, ws in enumerate(self.ordered()):
            ws.index = i

    def cell_count(self) -> int:
        """Grid cells across all worksheets (Google's 10 million limit counts these)."""
        return sum(ws.row_count * ws.column_count for ws in self.sheets)

    def resource(self) -> dict[str, Any]:
        """The Spreadsheet resource of spreadsheets.get (without grid data)."""
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {
                "title": self.title,
                "locale": self.locale,
                "autoRecalc": "ON_CHANGE",
                "timeZone": self.time_zone,
            },
            "sheets": [{"properties": ws.properties()} for ws in self.ordered()],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }


__all__ = [
    "ACTOR",
    "MAX_CELLS",
    "EditError",
    "ProtectedCell",
    "Spreadsheet",
    "Worksheet",
    "make_worksheet",
    "new_sheet_id",
    "new_spreadsheet_id",
]
