"""Operator hooks: edits the stand-in makes to a spreadsheet at a chosen moment.

A hook plays the operator: it gets the live spreadsheet, under the server lock, just
before a request is executed. It can be tied to a request (the n-th one of a route or
kind, or any write that follows a read of the same caller) or to a moment on the
stand-in's clock (the first request at or after that time), so a test puts the edit at
the worst moment for the client: between its read and its write, between two writes,
during a quota pause.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from gsheets_standin._model import Spreadsheet

OperatorHook = Callable[[Spreadsheet], None]
"""Called with the live spreadsheet, under the server lock, before a request runs."""


@dataclass
class _Pending:
    hook: OperatorHook
    route: str | None
    kind: str | None
    skip: int
    remaining: int | None
    after_read: bool = False
    at: float | None = None


@dataclass(frozen=True)
class RequestInfo:
    """What a hook condition looks at: the request's route and kind, and whether the same
    caller's previous request on this spreadsheet was a read."""

    route: str
    kind: str
    follows_read: bool
    now: float


class Hooks:
    """The pending operator hooks of a stand-in; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []

    def add(
        self,
        hook: OperatorHook,
        *,
        route: str | None = None,
        kind: str | None = None,
        skip: int = 0,
        times: int | None = 1,
        after_read: bool = False,
        at: float | None = None,
    ) -> None:
        """Run `hook` before matching requests: `route`/`kind` filters, the first `skip`
        matches passed over, `times` runs (None: every match). `after_read`: only a write
        that follows a read of the same caller; `at`: only once the clock reached `at`."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None)")
        with self._lock:
            self._pending.append(_Pending(hook, route, kind, skip, times, after_read, at))

    def clear(self) -> None:
        """Forget every pending hook."""
        with self._lock:
            self._pending.clear()

    def replace_read_write(self, hook: OperatorHook | None, times: int | None) -> None:
        """The one `between_read_and_write` hook: replaced, or removed with None."""
        with self._lock:
            self._pending = [p for p in self._pending if not p.after_read]
            if hook is not None:
                self._pending.append(_Pending(hook, None, "write", 0, times, after_read=True))

    def due(self, request: RequestInfo) -> list[OperatorHook]:
        """The hooks to run before `request`, in the order they were added."""
        ready: list[OperatorHook] = []
        with self._lock:
            for pending in list(self._pending):
                if not self._matches(pending, request):
                    continue
                if pending.skip > 0:
                    pending.skip -= 1
                    continue
                ready.append(pending.hook)
                if pending.remaining is not None:
                    pending.remaining -= 1
                    if pending.remaining <= 0:
                        self._pending.remove(pending)
        return ready

    @staticmethod
    def _matches(pending: _Pending, request: RequestInfo) -> bool:
        if pending.route is not None and pending.route != request.route:
            return False
        if pending.kind is not None and pending.kind != request.kind:
            return False
        if pending.after_read and not request.follows_read:
            return False
        return pending.at is None or request.now >= pending.at
