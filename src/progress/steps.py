"""One move of an event stream (`Step`), and sharing it between streams (`StepCache`).

Hundreds of dashboards following one batch wake at the same moment at the same cursor:
what each would send next is the same text, so one of them reads and formats it and the
others send it as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One move of a stream: the text to send, log events in it, the new position, whether
    the stream ended, and whether it caught up with the known log."""

    text: str
    sent: int
    scan: int
    ended: bool
    caught_up: bool


class StepCache:
    """Shares `Step`s between the streams of one scope at the same position (bounded).

    Hundreds of dashboards following one batch wake at the same moment at the same cursor:
    one of them reads and formats the new events, the others send the same text.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._steps: dict[tuple[Hashable, int, int], Step] = {}
        self._lock = threading.Lock()

    def get(self, scope: Hashable, scan: int, known: int, make: Callable[[int, int], Step]) -> Step:
        """The step of `scope` from `scan` with the log known up to `known`."""
        key = (scope, scan, known)
        found = self._steps.get(key)
        if found is None:
            found = make(scan, known)
            with self._lock:
                self._steps[key] = found
                while len(self._steps) > self._size:
                    self._steps.pop(next(iter(self._steps)))
        return found
