"""A clock that moves only when told to, shared by the stand-in and the client under test."""

from __future__ import annotations

import threading


class ManualClock:
    """Seconds that advance only through `advance` or `sleep`.

    Pass `clock.now` as the stand-in's quota clock and `clock.now` / `clock.sleep` to the
    client's token buckets and retry policy: a minute of quota refill then takes no real time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The current reading."""
        with self._lock:
            return self._now

    def __call__(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` (never backwards)."""
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        """A `time.sleep` stand-in: records the request and advances the clock at once."""
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)
