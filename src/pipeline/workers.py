"""A pool of worker threads that claims a batch's queued jobs and runs them."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.runner import JobRunner, short_reason
from progress import JobStatus, Store
from progress.errors import ProgressError
from progress.owners import owner_alive

log = logging.getLogger(__name__)


class BatchExecutor(Protocol):
    """What runs a batch's queued jobs: this process's `WorkerPool`, or the celery executor
    (`sheetbatch.dispatch`) whose rows run on other processes."""

    def run_batch(self, batch_id: str) -> None:
        """Run the batch's queued jobs; return when none is left (or after `stop()`)."""

    def stop(self) -> None:
        """Take no new job."""


def record_crash(
    store: Store, job_id: str, exc: Exception, *, owner: str, epoch: int | None = None
) -> None:
    """Fail a job whose runner crashed (`internal error: …`), fenced by owner (and epoch);
    when even that cannot be written, its lease expires and it is requeued."""
    log.exception("[job %s] runner failed", job_id)
    try:
        store.fail_job(
            job_id,
            phase=None,
            reason=f"internal error: {short_reason(exc)}",
            owner=owner,
            epoch=epoch,
        )
    except ProgressError:
        log.exception("[job %s] could not record the failure; its lease will expire", job_id)


@dataclass
class WorkerPool:
    """Runs a batch's jobs on `concurrency` threads with leases renewed by one heartbeat thread."""

    store: Store
    runner: JobRunner
    concurrency: int = 8
    lease_seconds: float = 30.0
    max_attempts: int = 3
    _active: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def owner(self) -> str:
        return self.runner.owner

    def recover(self, batch_id: str) -> list[tuple[str, str]]:
        """Requeue the batch's jobs whose worker died (lease expired or process gone)."""
        return self.store.requeue_expired(
            max_attempts=self.max_attempts,
            owner_alive=lambda o: owner_alive(o, me=self.owner),
            batch_id=batch_id,
        )

    def run_batch(self, batch_id: str) -> None:
        """Run the batch's queued jobs until none is left (or `stop()` was called)."""
        self.recover(batch_id)
        beat = threading.Thread(
            target=self._heartbeat, args=(batch_id,), name="sheetbatch-heartbeat", daemon=True
        )
        beat.start()
        try:
            while not self._stop.is_set():
                threads = [
                    threading.Thread(
                        target=self._work, args=(batch_id,), name=f"sheetbatch-worker-{i}"
                    )
                    for i in range(max(1, self.concurrency))
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                # A job requeued while the workers drained (a lost lease) needs another round.
                if self._stop.is_set() or not self.store.jobs(
                    batch_id=batch_id, statuses=[JobStatus.QUEUED], limit=1
                ):
                    break
        finally:
            self._stop.set()
            beat.join(timeout=5)

    def stop(self) -> None:
        """Ask workers to take no new job; running jobs finish their current phase."""
        self._stop.set()

    def _work(self, batch_id: str) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim_next(batch_id, self.owner, self.lease_seconds)
            except ProgressError:
                log.exception("claiming a job of batch %s failed", batch_id)
                return
            if job is None:
                return
            job_id = str(job["job_id"])
            with self._lock:
                self._active.add(job_id)
            try:
                self.runner.run(job)
            except Exception as exc:
                # A loop boundary: record the failure rather than leave the job running.
                record_crash(self.store, job_id, exc, owner=self.owner)
            finally:
                with self._lock:
                    self._active.discard(job_id)

    def _heartbeat(self, batch_id: str) -> None:
        interval = max(0.2, self.lease_seconds / 3)
        last_recover = 0.0
        elapsed = 0.0
        while not self._stop.wait(interval):
            elapsed += interval
            with self._lock:
                active = list(self._active)
            try:
                self.store.heartbeat(self.owner, active, self.lease_seconds)
                if elapsed - last_recover >= self.lease_seconds:
                    last_recover = elapsed
                    self.recover(batch_id)
            except ProgressError:
                log.exception("heartbeat for batch %s failed", batch_id)
