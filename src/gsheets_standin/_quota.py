"""Per-minute request quotas, per user and per project, on a controllable clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from gsheets_standin._errors import rate_limited


@dataclass(frozen=True)
class QuotaLimits:
    """Requests allowed per clock minute; a batch request counts as one.

    The defaults are Google's published Sheets API limits.
    """

    read_per_user: int = 60
    write_per_user: int = 60
    read_per_project: int = 300
    write_per_project: int = 300


GOOGLE_QUOTA = QuotaLimits()
"""Google's published per-minute limits: 60 per user and 300 per project, read and write."""


class QuotaCounter:
    """Counts requests in fixed clock minutes and refuses those over a limit with a 429."""

    def __init__(
        self, limits: QuotaLimits | None, clock: Callable[[], float], project_number: int
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._project_number = project_number
        self._lock = threading.Lock()
        self._minute = -1
        self._users: dict[tuple[str, str], int] = {}
        self._project: dict[str, int] = {}

    def _roll(self) -> None:
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self._minute = minute
            self._users.clear()
            self._project.clear()

    def charge(self, user: str, kind: str) -> None:
        """Count one `kind` ("read"/"write") request of `user`, or raise the 429 ApiError.

        A refused request is not counted, as with Google.
        """
        if self.limits is None:
            return
        with self._lock:
            self._roll()
            per_user = getattr(self.limits, f"{kind}_per_user")
            per_project = getattr(self.limits, f"{kind}_per_project")
            used_user = self._users.get((user, kind), 0)
            used_project = self._project.get(kind, 0)
            if used_user >= per_user:
                raise rate_limited(kind, True, per_user, self._project_number)
            if used_project >= per_project:
                raise rate_limited(kind, False, per_project, self._project_number)
            self._users[(user, kind)] = used_user + 1
            self._project[kind] = used_project + 1

    def used(self, user: str, kind: str) -> int:
        """Requests of `kind` by `user` counted in the current minute."""
        with self._lock:
            self._roll()
            return self._users.get((user, kind), 0)
