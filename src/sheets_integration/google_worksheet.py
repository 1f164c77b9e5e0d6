"""The worksheet as the Google backend reaches it: chosen once, then known by its sheetId."""

from __future__ import annotations

import logging
from typing import Any

from sheets_integration.errors import SheetNotFound
from sheets_integration.google_access import SheetsHTTPClient
from sheets_integration.google_api import SheetsApi
from sheets_integration.google_columns import Columns
from sheets_integration.google_pages import DEFAULT_PAGING, Paging
from sheets_integration.google_table import SheetState, WorksheetGone, read_state

log = logging.getLogger(__name__)


class Worksheet:
    """Worksheet `gid` or `title` (else the first) of spreadsheet `api.key`.

    Chosen by the spec once; from then on every request names it by sheetId, so renaming
    it, or giving its old name to a copy, changes nothing but the name in messages.
    """

    def __init__(
        self,
        api: SheetsApi,
        http: SheetsHTTPClient,
        *,
        gid: int | None,
        title: str | None,
        max_payload: int,
        paging: Paging = DEFAULT_PAGING,
    ) -> None:
        self.api = api
        self.http = http
        self.key = api.key
        self.max_payload = max_payload
        self.paging = paging
        self._gid = gid
        self._title = title
        self._sheet_id: int | None = None
        self._columns: Columns | None = None
        self._state: SheetState | None = None
        self._height = 0
        """Its row count as last seen (where a paged read plans its ranges)."""

    @property
    def name(self) -> str:
        """`<key>/<title>` (the title as last read), for messages."""
        title = self._state.title if self._state is not None else self._title
        if title:
            return f"{self.key}/{title}"
        return f"{self.key}#gid={self._gid}" if self._gid is not None else self.key

    @property
    def title(self) -> str:
        """The worksheet's title: as last read, or as chosen (one request, the first time)."""
        _ = self.sheet_id
        if self._state is not None:
            return self._state.title
        return self._title or ""

    @property
    def chosen(self) -> bool:
        """Whether the worksheet has been chosen (its sheetId is known)."""
        return self._sheet_id is not None

    @property
    def sheet_id(self) -> int:
        """The worksheet's sheetId (chosen by the spec on first use)."""
        if self._sheet_id is None:
            self._sheet_id = int(self._choose(self.api.sheets()).get("sheetId", 0))
        return self._sheet_id

    @property
    def columns(self) -> Columns:
        """Our tagged columns on it."""
        if self._columns is None:
            self._columns = Columns(self.api, self.sheet_id)
        return self._columns

    def state(self, *, fresh: bool = False) -> SheetState:
        """The worksheet as last read; read now (two requests) when `fresh` or never read."""
        if fresh or self._state is None:
            try:
                self._state = read_state(self.api, self.sheet_id, self.height, self.paging)
            except WorksheetGone:
                raise self.gone() from None
            self._height = self._state.rows
        return self._state

    @property
    def height(self) -> int:
        """The worksheet's row count as last seen (by choosing it or by a read)."""
        _ = self.sheet_id
        return self._height

    def synced(self) -> None:
        """Keep the last read current after a `columns.sync` that changed the sheet: its
        tags are the ones we now know, columns it inserted are in the header."""
        state, columns = self._state, self.columns
        if state is None:
            return
        if columns.added is not None:
            state = state.with_columns(*columns.added)
        known = {t.metadata_id for t in columns.tags.values()}
        state.tags = [t for t in state.tags if t.metadata_id not in columns.dropped | known] + list(
            columns.tags.values()
        )
        self._state = state

    def exists(self) -> bool:
        """Whether the spreadsheet still has this worksheet (one request)."""
        return any(int(p.get("sheetId", 0)) == self.sheet_id for p in self.api.sheets())

    def gone(self) -> SheetNotFound:
        """The error for a worksheet deleted while the batch ran."""
        titles = ", ".join(repr(p.get("title")) for p in self.api.sheets()) or "none"
        return SheetNotFound(
            f"worksheet {self.name} (deleted while the batch ran?)", f"its worksheets are {titles}"
        )

    def _choose(self, sheets: list[dict[str, Any]]) -> dict[str, Any]:
        titles = ", ".join(repr(s.get("title")) for s in sheets) or "none"
        if self._gid is not None:
            found = [s for s in sheets if int(s.get("sheetId", 0)) == self._gid]
            what, hint = f"worksheet gid={self._gid}", f"its worksheets are {titles}"
        elif self._title is not None:
            # As typed first (trailing spaces included), then ignoring case only.
            found = [s for s in sheets if s.get("title") == self._title] or [
                s for s in sheets if str(s.get("title", "")).casefold() == self._title.casefold()
            ]
            what, hint = f"worksheet {self._title!r}", f"its worksheets are {titles}"
        else:
            found = sorted(sheets, key=lambda s: int(s.get("index", 0)))[:1]
            what, hint = "any worksheet", "add a worksheet"
        if not found:
            raise SheetNotFound(f"{what} in Google spreadsheet {self.key}", hint)
        chosen = found[0]
        self._title = str(chosen.get("title", self._title or ""))
        self._height = int(chosen.get("gridProperties", {}).get("rowCount", 0))
        return chosen
