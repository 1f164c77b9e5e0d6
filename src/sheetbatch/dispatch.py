"""The celery executor: a batch's rows dispatched as nudges, its progress followed from the store.

`CeleryExecutor.run_batch` stands where the local `WorkerPool.run_batch` does (the batch
processor calls either): it marks the batch as run by Celery, publishes one nudge per queued
row (confirmed by the broker, then recorded as dispatched: a crash between the two is
repaired by the reconciler's re-nudge), then waits on the log until the batch ends, running
reconciler passes whenever this process leads them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from celery import Celery
from sqlalchemy.exc import SQLAlchemyError

from progress import Store
from progress.errors import ProgressError
from progress.status import BatchStatus
from sheetbatch.celery_app import publish
from sheetbatch.reconciler import Reconciler

log = logging.getLogger(__name__)

_CHUNK = 500


@dataclass
class CeleryExecutor:
    """Runs a batch on the cluster's workers (see the module doc)."""

    store: Store
    app: Celery
    reconciler: Reconciler
    reconcile_interval: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run_batch(self, batch_id: str) -> None:
        """Dispatch the batch's queued rows and return when the batch ended (or `stop()`)."""
        self.store.set_executor(batch_id, "celery")
        ids = self.store.queued_job_ids(batch_id)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            publish(self.app, chunk)
            self.store.mark_dispatched(chunk)
        log.info("batch %s: %d rows dispatched", batch_id, len(ids))
        cursor = self.store.last_event_id()
        next_pass = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if self.store.batch(batch_id)["status"] != BatchStatus.RUNNING.value:
                        return
                except (ProgressError, SQLAlchemyError) as exc:
                    # A loop boundary: the store is out of reach for a moment (a restart, a
                    # killed connection); the rows go on, and so does following them.
                    log.warning("batch %s: cannot read the store (%s); retrying", batch_id, exc)
                    self._stop.wait(self.reconcile_interval)
                    continue
                now = time.monotonic()
                if now >= next_pass:
                    next_pass = now + self.reconcile_interval
                    self._reconcile()
                cursor = self.store.wait(cursor, timeout=self.reconcile_interval)
        finally:
            with contextlib.suppress(ProgressError, SQLAlchemyError):
                self.reconciler.resign()
            self.app.close()

    def _reconcile(self) -> None:
        try:
            self.reconciler.tick()
        except Exception:
            # A loop boundary: the broker or the store is down for a moment; the next pass.
            log.exception("reconciler pass failed")

    def stop(self) -> None:
        """Stop following (the rows go on running on the workers)."""
        self._stop.set()
