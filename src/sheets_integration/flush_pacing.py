"""Flush pacing: how long the sheet writer waits between flushes.

A flush of a local file rewrites it whole, so on a big sheet each flush has a cost that does not
depend on how many rows it writes. The pacing keeps that cost under a share of the run by
spacing flushes out after the quickest recent one, never after the last one alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

#: At most this share of a run goes to flushing: a flush that rewrites a big file whole
#: is followed by a pause long enough to keep it so.
FLUSH_SHARE = 0.1


def flush_pause(interval: float, seconds: float, share: float = FLUSH_SHARE) -> float:
    """Seconds from the end of a flush that took `seconds` to the next one: `interval`, or
    longer when flushing would otherwise take more than `share` of the time."""
    return max(interval, seconds * (1.0 - share) / share)


def fixed_flush_cost(recent: Sequence[float]) -> float:
    """What a flush costs whatever it writes (a big file's read and rewrite), estimated as
    the quickest of the `recent` flushes' durations.

    The rows a flush writes cost the same however they are grouped, so only this part is
    worth spreading out; pausing after the whole duration would make the next flush bigger,
    hence slower, hence the pause after it longer, without end.
    """
    return min(recent, default=0.0)


@dataclass
class FlushPacing:
    """The pause after each flush of one writer, from the durations of its recent flushes."""

    interval: float
    share: float = FLUSH_SHARE
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=8))

    def flushed(self, seconds: float) -> float:
        """Note a flush that wrote rows in `seconds`; the pause before the next one."""
        self._recent.append(seconds)
        return self.pause()

    def pause(self) -> float:
        """The pause before the next flush, from what the recent flushes cost."""
        return flush_pause(self.interval, fixed_flush_cost(self._recent), self.share)
