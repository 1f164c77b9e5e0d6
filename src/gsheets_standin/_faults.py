"""Injected faults: the next requests of a kind fail with an error, a timeout or a reset."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gsheets_standin._http import Fault

KINDS = ("read", "write", "api", "token", "any")


@dataclass
class PendingFault:
    """A fault still to be served `remaining` more times to requests of `kind`."""

    fault: Fault
    remaining: int
    kind: str
    delay: float


class FaultQueue:
    """Faults waiting for their requests, served in the order they were injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[PendingFault] = []

    def add(self, fault: Fault, times: int, kind: str, delay: float) -> None:
        """Fail the next `times` requests of `kind` with `fault`."""
        if kind not in KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        with self._lock:
            self._pending.append(PendingFault(fault, times, kind, delay))

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._pending.clear()

    def take(self, kind: str) -> PendingFault | None:
        """The fault a request of `kind` ("read", "write", "token") gets, if any."""
        with self._lock:
            for pending in self._pending:
                if (
                    pending.kind == kind
                    or pending.kind == "any"
                    or (pending.kind == "api" and kind in ("read", "write"))
                ):
                    pending.remaining -= 1
                    if pending.remaining <= 0:
                        self._pending.remove(pending)
                    return pending
        return None
