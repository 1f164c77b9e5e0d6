"""Fenced job claims: a job started under a lease, and a worker given only a job id taking
the job under a new lease epoch.

The local pool starts the batch's next queued job (`claim_next`, `start_job`); every start
bumps the job's lease epoch (`_start`).

A distributed worker (a Celery task, `sheetbatch.distributed`) gets a nudge "look at job X"
that may be a duplicate (a broker redelivery) or stale (the job ended meanwhile). It calls
`claim_job`: one conditional UPDATE succeeds only when the job is runnable (queued, or
running under an expired lease) and bumps the job's lease epoch. No claim: the nudge is
dropped. Every later write of that attempt names (owner, epoch) and is refused in its own
transaction once the job was claimed again, so a paused or partitioned worker cannot write
after another took over. Dispatch bookkeeping (which queued jobs were nudged when) and the
workers' registry (`worker:<owner>` leases) live here too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from progress import schema as t
from progress.commit import Tx
from progress.leases import Lease, LeaseOps, fence
from progress.schedule_model import Fence
from progress.snapshots import JobSnapshot, job_snapshot
from progress.statements import JobRow
from progress.status import BatchStatus, EventType, JobStatus
from progress.transitions import JobTransitions

log = logging.getLogger(__name__)

WORKER_LEASE_PREFIX = "worker:"


def worker_lease_name(owner: str) -> str:
    """The registry lease a distributed worker process holds while it is alive."""
    return WORKER_LEASE_PREFIX + owner


@dataclass(frozen=True)
class Claim:
    """A job claimed by `owner` at lease `epoch`; `job` is its snapshot as running."""

    job: JobSnapshot
    owner: str
    epoch: int

    @property
    def job_id(self) -> str:
        return self.job["job_id"]


@dataclass(frozen=True)
class WorkerInfo:
    """A distributed worker as the registry knows it, with the rows it runs now."""

    owner: str
    alive: bool
    renewed: float
    running: int


class JobClaims(JobTransitions, LeaseOps):
    """Claims, dispatch bookkeeping and the workers' registry (a part of `Store`)."""

    # ------------------------------------------------------------------ starting
    def claim_next(self, batch_id: str, owner: str, lease_seconds: float) -> JobSnapshot | None:
        """Move the batch's first queued job to running under `owner`'s lease, or None."""

        def _op(tx: Tx) -> JobSnapshot | None:
            job = tx.sql.first_queued(batch_id)
            return None if job is None else self._start(tx, job, owner, lease_seconds)

        return self._apply(_op)

    def start_job(self, job_id: str, owner: str, lease_seconds: float) -> JobSnapshot:
        """Move a queued job to running under `owner`'s lease (for workers given a job id)."""
        return self._apply(lambda tx: self._start(tx, tx.sql.job(job_id), owner, lease_seconds))

    def _start(
        self, tx: Tx, job: JobRow, owner: str, lease_seconds: float, epoch: int | None = None
    ) -> JobSnapshot:
        """Start the job under a new lease epoch (`epoch`, or the next one); its snapshot."""
        values: dict[str, Any] = {
            "attempts": job.attempts + 1,
            "lease_owner": owner,
            "lease_expires": tx.now + lease_seconds,
            "lease_epoch": job.lease_epoch + 1 if epoch is None else epoch,
            "started": tx.now,
        }
        event_id = self._move(
            tx,
            job,
            JobStatus.RUNNING,
            EventType.JOB_STARTED,
            {"attempt": job.attempts + 1, "worker": owner},
            values,
        )
        running = job._replace(
            status=JobStatus.RUNNING.value, updated=tx.now, last_event_id=event_id, **values
        )
        return job_snapshot(running)

    def claim_job(
        self, job_id: str, owner: str, lease_seconds: float, *, max_attempts: int = 3
    ) -> Claim | None:
        """Claim the job for `owner` under a new lease epoch, or None (not runnable now).

        A job still running under an expired lease is taken over: it is requeued (reason
        `lease expired`) and started again in the same transaction, or failed as
        `abandoned` when it used `max_attempts` attempts; one in a cancelled batch is
        cancelled instead.
        """

        def _op(tx: Tx) -> Claim | None:
            job = tx.sql.claim(job_id, tx.now)
            if job is None:
                return None
            epoch = job.lease_epoch
            cancelled = tx.sql.cancel_requested(job.batch_id)
            if job.status == JobStatus.RUNNING.value:
                if cancelled:
                    self._cancel(tx, job, "batch cancelled")
                    return None
                if job.attempts >= max_attempts:
                    self._fail(tx, job, None, "abandoned")
                    return None
                self._requeue(tx, job, "lease expired")
                job = tx.sql.job(job_id)
            elif cancelled:
                self._cancel(tx, job, "batch cancelled")
                return None
            return Claim(self._start(tx, job, owner, lease_seconds, epoch), owner, epoch)

        return self._apply(_op)

    def renew_claims(self, owner: str, claims: Mapping[str, int], lease_seconds: float) -> set[str]:
        """Extend the leases `owner` holds on these jobs (job id -> epoch); the ids renewed.

        A job missing from the answer was claimed again or ended: its attempt must stop.
        """
        if not claims:
            return set()
        renewed: set[str] = set()
        expires = self.clock() + lease_seconds
        with self._write_lock, self._write_engine.begin() as conn:
            for job_id, epoch in claims.items():
                result = conn.execute(
                    update(t.jobs)
                    .where(
                        t.jobs.c.job_id == job_id,
                        t.jobs.c.lease_owner == owner,
                        t.jobs.c.lease_epoch == epoch,
                        t.jobs.c.status == JobStatus.RUNNING.value,
                    )
                    .values(lease_expires=expires)
                )
                if result.rowcount:
                    renewed.add(job_id)
        return renewed

    # ------------------------------------------------------------------ dispatch
    def set_executor(self, batch_id: str, kind: str) -> None:
        """Say which executor runs the batch ("local" or "celery")."""
        with self._write_lock, self._write_engine.begin() as conn:
            conn.execute(
                update(t.batches).where(t.batches.c.batch_id == batch_id).values(executor=kind)
            )

    def mark_dispatched(self, job_ids: Iterable[str]) -> None:
        """Record that nudges for these jobs were handed to the broker now.

        Only rows still queued are marked, and on PostgreSQL only rows no transaction holds:
        the nudges are already out, so workers claim these rows this very moment, a group of
        claims locking its rows in its own order - waiting for them could deadlock with it
        (and did). A row being claimed needs no nudge record; each chunk commits alone.
        """
        ids = list(job_ids)
        now = self.clock()
        skip_locked = self._write_engine.dialect.name == "postgresql"
        queued = t.jobs.c.status == JobStatus.QUEUED.value
        for start in range(0, len(ids), 500):
            target = t.jobs.c.job_id.in_(ids[start : start + 500])
            if skip_locked:
                free = select(t.jobs.c.job_id).where(target, queued)
                target = t.jobs.c.job_id.in_(free.with_for_update(skip_locked=True))
            with self._write_lock, self._write_engine.begin() as conn:
                conn.execute(update(t.jobs).where(target, queued).values(dispatched=now))

    def queued_job_ids(self, batch_id: str) -> list[str]:
        """The batch's queued jobs, by row."""
        query = (
            select(t.jobs.c.job_id)
            .where(t.jobs.c.batch_id == batch_id, t.jobs.c.status == JobStatus.QUEUED.value)
            .order_by(t.jobs.c.row)
        )
        with self.engine.connect() as conn:
            return [str(job_id) for (job_id,) in conn.execute(query)]

    def due_nudges(self, older_than: float, *, limit: int = 1000) -> list[str]:
        """Queued jobs of running `celery` batches not dispatched in `older_than` seconds."""
        cutoff = self.clock() - older_than
        query = (
            select(t.jobs.c.job_id)
            .join(t.batches, t.batches.c.batch_id == t.jobs.c.batch_id)
            .where(
                t.batches.c.executor == "celery",
                t.batches.c.status == BatchStatus.RUNNING.value,
                t.jobs.c.status == JobStatus.QUEUED.value,
                or_(t.jobs.c.dispatched.is_(None), t.jobs.c.dispatched < cutoff),
            )
            .order_by(t.jobs.c.batch_id, t.jobs.c.row)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [str(job_id) for (job_id,) in conn.execute(query)]

    def running_celery_batches(self) -> list[str]:
        """Running batches whose rows run on distributed workers."""
        query = select(t.batches.c.batch_id).where(
            t.batches.c.executor == "celery", t.batches.c.status == BatchStatus.RUNNING.value
        )
        with self.engine.connect() as conn:
            return [str(batch_id) for (batch_id,) in conn.execute(query)]

    # ------------------------------------------------------------------ workers
    def workers(self) -> list[WorkerInfo]:
        """Distributed workers known to the registry, live ones first, with rows in flight."""
        now = self.clock()
        leases: list[Lease] = self.leases_like(WORKER_LEASE_PREFIX)
        query = (
            select(t.jobs.c.lease_owner, func.count())
            .where(and_(t.jobs.c.status == JobStatus.RUNNING.value))
            .group_by(t.jobs.c.lease_owner)
        )
        with self.engine.connect() as conn:
            running = {str(owner): int(n) for owner, n in conn.execute(query)}
        found = [
            WorkerInfo(
                owner=lease.name.removeprefix(WORKER_LEASE_PREFIX),
                alive=lease.held(now),
                renewed=lease.renewed,
                running=running.get(lease.name.removeprefix(WORKER_LEASE_PREFIX), 0),
            )
            for lease in leases
        ]
        return sorted(found, key=lambda w: (not w.alive, w.owner))

    def worker_alive(self, owner: str) -> bool | None:
        """False for a registered worker whose heartbeat stopped, True for a live one, None
        for an owner that is not a registered worker (its job leases decide)."""
        lease = self.lease(worker_lease_name(owner))
        if lease is None:
            return None
        return lease.held(self.clock())

    def fenced_requeue(
        self, guard: Fence, batch_ids: Iterable[str], dead: set[str], *, max_attempts: int
    ) -> list[tuple[str, str]]:
        """Requeue running jobs of these batches whose lease expired or whose owner is in
        `dead`, conditional on `guard` (the reconciler's lease) in the same transaction."""
        ids = list(batch_ids)
        outcome: list[tuple[str, str]] = []
        if not ids:
            return outcome

        def _op(tx: Tx) -> None:
            outcome.clear()
            fence(tx.conn, guard, tx.now)
            query = select(t.jobs).where(
                t.jobs.c.status == JobStatus.RUNNING.value, t.jobs.c.batch_id.in_(ids)
            )
            for job in tx.conn.execute(query).all():
                expired = job.lease_expires is None or job.lease_expires < tx.now
                if not expired and job.lease_owner not in dead:
                    continue
                if job.attempts >= max_attempts:
                    self._fail(tx, job, None, "abandoned")
                    outcome.append((job.job_id, "abandoned"))
                else:
                    self._requeue(tx, job, "worker lost")
                    outcome.append((job.job_id, "requeued"))

        self._apply(_op)
        for job_id, what in outcome:
            log.warning("[job %s] its worker is gone: %s", job_id, what)
        return outcome
