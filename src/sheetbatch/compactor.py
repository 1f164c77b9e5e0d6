"""Keeping the store small: compacting finished batches and pruning old ticks.

`compact_store` is the one action (the `sheetbatch compact` command and the automatic policy
both call it): it removes the progress reports of finished batches (`Store.compact`: every
state transition stays) and keeps each schedule's tick history bounded - its newest
`TICKS_KEPT` ticks plus every tick due within `[store] compact_after`; unfinished ticks are
never pruned.

`Compactor` is the automatic policy of the long-lived processes (`serve`, `scheduler`):
every `interval` seconds it tries for the `store.compactor` lease, and only its holder
compacts, its writes fenced by the lease's epoch, so two processes never compact at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from progress import Store
from progress.errors import NotLeader
from progress.schedule_model import Fence

log = logging.getLogger(__name__)

LEASE = "store.compactor"
TICKS_KEPT = 100  # ticks kept per schedule beyond the compact_after window
LEASE_SECONDS = 600.0


@dataclass(frozen=True)
class CompactionReport:
    """What one compaction pass did, and the store's size before and after it (bytes)."""

    batches: tuple[str, ...]
    events_removed: int
    ticks_pruned: int
    bytes_before: int
    bytes_after: int

    def to_json(self) -> dict[str, Any]:
        return {
            "batches": list(self.batches),
            "events_removed": self.events_removed,
            "ticks_pruned": self.ticks_pruned,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
        }


def compact_store(
    store: Store,
    *,
    batch_ids: Sequence[str] | None = None,
    finished_before: float | None = None,
    tick_window: float,
    keep_ticks: int = TICKS_KEPT,
    guard: Fence | None = None,
) -> CompactionReport:
    """Compact these batches (default: every finished one, finished before `finished_before`
    when given) and prune ticks older than `tick_window` seconds beyond `keep_ticks` per
    schedule. Raises BatchStillRunning / UnknownBatch for a named batch, NotLeader when
    `guard`'s lease moved on."""
    before = store.size_bytes()
    done = store.compact(batch_ids, finished_before=finished_before, guard=guard)
    pruned = store.prune_ticks(
        keep=keep_ticks, finished_before=store.clock() - tick_window, guard=guard
    )
    return CompactionReport(done.batches, done.events_removed, pruned, before, store.size_bytes())


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


class Compactor:
    """The automatic policy: compacts batches finished `compact_after` seconds ago, under
    the `store.compactor` lease (see the module doc). `db` runs store work (the server
    passes its thread-pool offload: SQLite calls must not block its loop)."""

    def __init__(
        self,
        store: Store,
        *,
        compact_after: float,
        interval: float | None = None,
        owner: str | None = None,
        db: Callable[..., Any] = _call,
    ) -> None:
        self.store = store
        self.compact_after = compact_after
        # Often enough that a batch is compacted soon after it is due (at most every second).
        self.interval = (
            interval if interval is not None else max(1.0, min(3600.0, compact_after / 4))
        )
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:compactor"
        self._db = db
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> CompactionReport | None:
        """One pass if this process gets the lease; None when another process holds it."""
        epoch = self._db(self.store.acquire_lease, LEASE, self.owner, LEASE_SECONDS)
        if epoch is None:
            return None
        guard = Fence(LEASE, self.owner, epoch)
        try:
            report: CompactionReport = self._db(
                compact_store,
                self.store,
                finished_before=self.store.clock() - self.compact_after,
                tick_window=self.compact_after,
                guard=guard,
            )
        finally:
            self._db(self.store.release_lease, LEASE, self.owner)
        if report.batches or report.ticks_pruned:
            log.info(
                "compacted %d batches (%d events removed), pruned %d ticks; store %d -> %d bytes",
                len(report.batches),
                report.events_removed,
                report.ticks_pruned,
                report.bytes_before,
                report.bytes_after,
            )
        return report

    def run(self) -> None:
        """Pass after pass, `interval` seconds apart, until `stop()`."""
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except NotLeader:
                log.warning("compaction stopped: another process took the compactor lease")
            except Exception:
                # A loop boundary: the store may be briefly unavailable; next pass retries.
                log.exception("compaction failed; trying again in %.0f s", self.interval)

    def start(self) -> None:
        """Run on a background thread (a greenlet under gevent) until `stop()`."""
        self._thread = threading.Thread(target=self.run, name="sheetbatch-compactor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the pass under way, if any (within `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
