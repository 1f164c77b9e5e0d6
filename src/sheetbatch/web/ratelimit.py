"""Failed authentications per client address: 10 a minute, then 429 with Retry-After.

A client that has failed `limit` times within `window` seconds is refused - even with the
right token - until its oldest counted failure leaves the window; attempts while refused
count too, so a client that keeps guessing stays out. The log gets one line when an address
first fails, one when it is blocked, and a summary per window of everything that failed in
it - not a line per attempt, which a brute-force run would turn into a flood.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable

log = logging.getLogger(__name__)


class FailureLimiter:
    """Counts failed authentications per client address (thread-safe, bounded memory)."""

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()
        self._summary_since = clock()
        self._summary: Counter[str] = Counter()

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it may now."""
        with self._lock:
            return self._retry_after(client, self.clock())

    def _retry_after(self, client: str, now: float) -> int | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        if len(times) < self.limit:
            return None
        return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str, what: str) -> int | None:
        """Record a failed attempt (`what`: "bearer token", "sign-in"); the Retry-After
        seconds when `client` is now refused, else None."""
        with self._lock:
            now = self.clock()
            before = self._retry_after(client, now)
            times = self._failures.setdefault(client, deque(maxlen=self.limit))
            self._failures.move_to_end(client)
            first = not times
            times.append(now)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
            after = self._retry_after(client, now)
            self._summary[client] += 1
            summary = self._take_summary(now)
        if first:
            log.warning("failed authentication (%s) from %s", what, client)
        if after is not None and before is None:
            log.warning(
                "%s: %d failed authentications within %.0f s; refused for %d s",
                client,
                self.limit,
                self.window,
                after,
            )
        if summary:
            log.warning("%s", summary)
        return after

    def _take_summary(self, now: float) -> str:
        if now - self._summary_since < self.window:
            return ""
        counts, self._summary = self._summary, Counter()
        seconds = now - self._summary_since
        self._summary_since = now
        top = ", ".join(f"{c} x{n}" for c, n in counts.most_common(3))
        return (
            f"failed authentications in the last {seconds:.0f} s: {sum(counts.values())} "
            f"from {len(counts)} addresses (most: {top})"
        )
