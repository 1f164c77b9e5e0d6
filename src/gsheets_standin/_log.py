"""The stand-in's request log: every request as it arrived and how it was answered."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the stand-in saw it; `status` is 0 when it was dropped or reset.

    `at` is the stand-in's clock, `wall` the time of day; `size` the body's bytes as sent.
    """

    method: str
    path: str
    route: str
    kind: str
    status: int
    at: float
    wall: float
    user: str | None = None
    spreadsheet_id: str | None = None
    fault: str | None = None
    size: int = 0


class RequestLog:
    """Logged requests, oldest first; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def append(self, entry: LoggedRequest) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LoggedRequest]:
        """A copy of the log."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Empty the log."""
        with self._lock:
            self._entries.clear()

    def count(
        self,
        *,
        route: str | None = None,
        kind: str | None = None,
        status: int | None = None,
        user: str | None = None,
    ) -> int:
        """How many logged requests match every given filter."""
        return sum(
            1
            for r in self.entries()
            if (route is None or r.route == route)
            and (kind is None or r.kind == kind)
            and (status is None or r.status == status)
            and (user is None or r.user == user)
        )
