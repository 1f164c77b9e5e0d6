"""The reconciler: what a broker cannot promise, made good from the store.

Run by one leader of the cluster at a time (the `reconciler` lease; any `run --executor
celery`, `serve` or `worker` process may hold it, and another takes over within the lease's
TTL when the holder dies). Each pass, fenced by the leader's epoch:
- the rows of workers known dead (their registry lease expired, or their pid is gone on this
  host) and rows whose own lease expired are requeued (or failed as `abandoned`);
- queued rows of running celery batches not nudged for `redispatch_seconds` (a crash between
  commit and publish, a lost message, a requeue above) are nudged again.
A duplicate nudge costs one refused claim; a missing one would cost a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from progress import Store
from progress.errors import NotLeader
from progress.owners import new_owner, owner_alive
from progress.schedule_model import Fence

log = logging.getLogger(__name__)

LEASE = "reconciler"


@dataclass
class Reconciler:
    """One pass at a time of the cluster's repairs; `tick()` does one when this process leads."""

    store: Store
    publish: Callable[[Sequence[str]], None]
    owner: str = field(default_factory=new_owner)
    lease_seconds: float = 30.0
    redispatch_seconds: float = 300.0
    max_attempts: int = 3

    def tick(self) -> int | None:
        """Lead (take or renew the lease) and repair; rows nudged, or None when not leading."""
        epoch = self.store.acquire_lease(LEASE, self.owner, self.lease_seconds)
        if epoch is None:
            return None
        guard = Fence(LEASE, self.owner, epoch)
        try:
            batches = self.store.running_celery_batches()
            if batches:
                self.store.fenced_requeue(
                    guard, batches, self._dead(batches), max_attempts=self.max_attempts
                )
            due = self.store.due_nudges(self.redispatch_seconds)
        except NotLeader:
            log.warning("reconciler %s lost its lease mid-pass", self.owner)
            return None
        if due:
            self.publish(due)
            self.store.mark_dispatched(due)
            log.info("reconciler nudged %d queued rows", len(due))
        return len(due)

    def _dead(self, batches: Sequence[str]) -> set[str]:
        owners = {owner for batch in batches for owner, _ in self.store.leases(batch)}
        return {
            owner
            for owner in owners
            if owner_alive(owner, me=self.owner) is False or self.store.worker_alive(owner) is False
        }

    def resign(self) -> None:
        """Give the lease up now (a clean exit): another process leads at once."""
        self.store.release_lease(LEASE, self.owner)
