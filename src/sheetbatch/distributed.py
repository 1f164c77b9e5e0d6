"""A distributed worker process's runtime: `run_row(job_id)` as one fenced attempt at one row.

The Celery task (`celery_app.RUN_ROW`) calls `RowWorker.run_row` with the job id a nudge
carries. The worker claims the job in the store (no claim: a duplicate or stale nudge, acked
and forgotten), runs the batch's pipeline with the runner's own retries, deadlines and
cancel checks, every write fenced by (owner, epoch). One heartbeat thread renews the
worker's registry lease (`sheetbatch status --workers`) and the leases of its rows in
flight, and runs the reconciler whenever this process leads it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PipelineError
from pipeline.registry import load_pipeline
from pipeline.runner import JobRunner
from pipeline.workers import record_crash
from progress import Store
from progress.claims import worker_lease_name
from progress.errors import ProgressError
from sheetbatch.reconciler import Reconciler

log = logging.getLogger(__name__)


def worker_owner(name: str | None = None) -> str:
    """This worker process's owner id: `host:pid:name` (a random tag without a name)."""
    tag = (name or secrets.token_hex(3)).replace(":", "-")
    return f"{socket.gethostname()}:{os.getpid()}:{tag}"


@dataclass
class RowWorker:
    """Runs nudged rows in this process; one instance shared by every task thread."""

    store: Store
    services: Mapping[str, Any]
    reconciler: Reconciler
    owner: str = field(default_factory=worker_owner)
    lease_seconds: float = 30.0
    max_attempts: int = 3
    _claims: dict[str, int] = field(default_factory=dict)
    _runners: dict[str, JobRunner] = field(default_factory=dict)
    _pipelines: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _beat: threading.Thread | None = None

    def in_flight(self) -> dict[str, int]:
        """Rows this process runs now (job id -> lease epoch)."""
        with self._lock:
            return dict(self._claims)

    def run_row(self, job_id: str) -> str:
        """One attempt at the row; what became of the nudge (for logs and tests)."""
        try:
            claim = self.store.claim_job(
                job_id, self.owner, self.lease_seconds, max_attempts=self.max_attempts
            )
        except ProgressError as exc:
            # The store is the truth and it cannot be reached: the row stays queued and the
            # reconciler nudges it again; acking this message loses nothing.
            log.warning("[job %s] claim failed (%s); it will be nudged again", job_id, exc)
            return "unreachable"
        if claim is None:
            log.info("[job %s] nothing to claim: a duplicate or stale nudge", job_id)
            return "dropped"
        with self._lock:
            self._claims[job_id] = claim.epoch
        try:
            runner = self._runner(str(claim.job["batch_id"]))
            status = runner.run(claim.job, epoch=claim.epoch)
            return status.value
        except Exception as exc:
            # A loop boundary: record the failure (fenced) rather than leave the row running.
            record_crash(self.store, job_id, exc, owner=self.owner, epoch=claim.epoch)
            return "failed"
        finally:
            with self._lock:
                self._claims.pop(job_id, None)

    def _runner(self, batch_id: str) -> JobRunner:
        ref = self._pipelines.get(batch_id)
        if ref is None:
            ref = str(self.store.batch(batch_id)["pipeline"])
            self._pipelines[batch_id] = ref
        runner = self._runners.get(ref)
        if runner is None:
            try:
                pipeline = load_pipeline(ref)
            except PipelineError as exc:
                raise PipelineError(f"this worker cannot load the pipeline: {exc}") from exc
            runner = JobRunner(
                store=self.store,
                pipeline=pipeline,
                owner=self.owner,
                services=self.services,
                wait_for_success=False,
            )
            self._runners[ref] = runner
        return runner

    # ------------------------------------------------------------------ heartbeat
    def start(self) -> None:
        """Register in the store and start the heartbeat thread."""
        self.store.acquire_lease(worker_lease_name(self.owner), self.owner, self.lease_seconds)
        self._beat = threading.Thread(
            target=self._heartbeat, name="sheetbatch-worker-heartbeat", daemon=True
        )
        self._beat.start()

    def stop(self) -> None:
        """Stop the heartbeat, leave the registry and the reconciler's lead."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        try:
            self.store.drop_lease(worker_lease_name(self.owner))
            self.reconciler.resign()
        except ProgressError:
            log.warning("could not leave the workers' registry; its lease expires")

    def beat(self) -> None:
        """One heartbeat: the registry lease, the rows' leases, a reconciler pass."""
        self.store.acquire_lease(worker_lease_name(self.owner), self.owner, self.lease_seconds)
        claims = self.in_flight()
        renewed = self.store.renew_claims(self.owner, claims, self.lease_seconds)
        still = self.in_flight()  # a row that ended meanwhile was not renewed: not lost
        for job_id in claims.keys() - renewed:
            if still.get(job_id) == claims[job_id]:
                log.warning("[job %s] lease lost: its writes will be refused", job_id)
        self.reconciler.tick()

    def _heartbeat(self) -> None:
        interval = max(0.2, self.lease_seconds / 3)
        while not self._stop.wait(interval):
            try:
                self.beat()
            except Exception:
                # A loop boundary: the store may be down for a while; the next beat retries.
                log.exception("worker heartbeat failed")
