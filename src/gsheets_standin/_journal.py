"""The undo journal of one write request: how a request is all-or-nothing without a copy.

Google applies a write request whole or not at all. The stand-in used to run every write on
a copy of the spreadsheet and keep the copy on success, which costs the whole spreadsheet
(every cell list, every developer metadata entry) per request: on a 100,000-row sheet that
is most of a status write's time. Requests that only set cells and add or remove developer
metadata (`in_place`) instead change the spreadsheet itself while a `Journal` records how to
put back each change; a request that fails is undone in reverse order, leaving the
spreadsheet exactly as it was. Anything else (rows or columns inserted, sorted, sheets
added...) still runs on a copy: rare requests, where the copy's simplicity is worth more.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from typing import Any

IN_PLACE_VALUES = frozenset(
    {
        "values.update",
        "values.batchUpdate",
        "values.clear",
        "values.batchClear",
        "values.batchUpdateByDataFilter",
        "values.batchClearByDataFilter",
    }
)
"""Write methods that change stored cells only (values.append may grow the grid: copied)."""

IN_PLACE_REQUESTS = frozenset({"updateCells", "createDeveloperMetadata", "deleteDeveloperMetadata"})
"""spreadsheets.batchUpdate request kinds that change cells or the metadata lists only."""

Undo = Callable[[], None]

ACTIVE: contextvars.ContextVar[Journal | None] = contextvars.ContextVar(
    "standin_journal", default=None
)
"""The journal of the request being executed in place (None: not journaled)."""


def in_place(method: str, payload: Mapping[str, Any]) -> bool:
    """Whether a write of `method` with body `payload` may run on the spreadsheet itself."""
    if method in IN_PLACE_VALUES:
        return True
    if method != "spreadsheets.batchUpdate":
        return False
    requests = payload.get("requests")
    if not isinstance(requests, list):
        return True  # refused before anything changes
    return all(
        isinstance(r, dict) and len(r) == 1 and next(iter(r)) in IN_PLACE_REQUESTS for r in requests
    )


class Journal:
    """How to undo, newest first, each change made to a spreadsheet during one request."""

    def __init__(self) -> None:
        self._undo: list[Undo] = []
        self._saved: set[int] = set()

    def record(self, undo: Undo) -> None:
        """Remember `undo`, which reverses a change just made."""
        self._undo.append(undo)

    def save_list(self, owner: Any, attribute: str) -> None:
        """Remember the list `owner.attribute` as it is now (once per request): undoing
        puts that list object back, with the entries it had."""
        key = id(owner)
        if key in self._saved:
            return
        self._saved.add(key)
        original = getattr(owner, attribute)
        entries = list(original)

        def restore() -> None:
            original[:] = entries
            setattr(owner, attribute, original)

        self._undo.append(restore)

    def rollback(self) -> None:
        """Undo every recorded change, newest first."""
        while self._undo:
            self._undo.pop()()
        self._saved.clear()


def current() -> Journal | None:
    """The journal of the request running now, if it runs in place."""
    return ACTIVE.get()


@contextlib.contextmanager
def journaled() -> Iterator[Journal]:
    """Run the body with a fresh journal; on an exception undo everything, then re-raise."""
    journal = Journal()
    token = ACTIVE.set(journal)
    try:
        yield journal
    except BaseException:
        journal.rollback()
        raise
    finally:
        ACTIVE.reset(token)


__all__ = ["IN_PLACE_REQUESTS", "IN_PLACE_VALUES", "Journal", "current", "in_place", "journaled"]
