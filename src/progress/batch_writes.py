"""Batch writes of the progress store: creating a batch with its queued jobs, adding jobs
to it, cancelling it and requeueing its failed or cancelled jobs (a part of `Store`)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update

from progress import schema as t
from progress.commit import Tx
from progress.errors import BatchExists
from progress.reads import batch_row
from progress.status import BatchStatus, EventType, JobStatus
from progress.transitions import JobTransitions

_CHUNK = 2000


def new_batch_id() -> str:
    """A unique, URL-safe batch id."""
    return "b-" + secrets.token_hex(6)


def new_job_id() -> str:
    """A unique, URL-safe job id (64 random bits)."""
    return "j-" + secrets.token_hex(8)


@dataclass(frozen=True)
class NewJob:
    """A row becoming a job: its sheet row number, a label (company name) and its inputs."""

    row: int
    inputs: Mapping[str, str]
    label: str = ""
    job_id: str = field(default_factory=new_job_id)


class BatchWrites(JobTransitions):
    """The batch writes of the store (a part of `Store`)."""

    locally_cancelled: set[str]

    def create_batch(
        self,
        *,
        sheet: str,
        pipeline: str,
        phases: Sequence[str],
        jobs: Sequence[NewJob],
        options: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
    ) -> str:
        """Create a running batch with every job queued; one event per job, one transaction.

        A `batch_id` given that exists already raises BatchExists (an idempotency key).
        """
        given = batch_id is not None
        batch_id = batch_id or new_batch_id()

        def _op(tx: Tx) -> None:
            if (
                given
                and tx.conn.execute(
                    select(t.batches.c.batch_id).where(t.batches.c.batch_id == batch_id)
                ).first()
            ):
                raise BatchExists(batch_id)  # before any write: the rest of the group goes on
            created = tx.emit(
                EventType.BATCH_CREATED,
                batch_id,
                None,
                {
                    "sheet": sheet,
                    "pipeline": pipeline,
                    "phases": list(phases),
                    "total": len(jobs),
                    "status": BatchStatus.RUNNING.value,
                },
            )
            tx.conn.execute(
                insert(t.batches).values(
                    batch_id=batch_id,
                    sheet=sheet,
                    pipeline=pipeline,
                    phases=list(phases),
                    status=BatchStatus.RUNNING.value,
                    total=0,
                    n_queued=0,
                    options=dict(options or {}),
                    created=tx.now,
                    updated=tx.now,
                    last_event_id=created,
                )
            )
            self._insert_jobs(tx, batch_id, len(phases), jobs)
            if not jobs:
                self._maybe_finish_batch(tx, batch_id, None)

        self._apply(_op)
        return batch_id

    def add_jobs(self, batch_id: str, jobs: Sequence[NewJob]) -> None:
        """Add queued jobs to an existing batch (new rows found when a run resumes)."""
        if not jobs:
            return

        def _op(tx: Tx) -> None:
            batch = batch_row(tx.conn, batch_id)
            self._maybe_reopen_batch(tx, batch_id, None)
            tx.emit(EventType.JOBS_ADDED, batch_id, None, {"count": len(jobs)})
            self._insert_jobs(tx, batch_id, len(batch.phases), jobs)

        return self._apply(_op)

    def _insert_jobs(self, tx: Tx, batch_id: str, phase_count: int, jobs: Sequence[NewJob]) -> None:
        if not jobs:
            return
        rows: list[dict[str, Any]] = []
        for job in jobs:
            if len(rows) >= _CHUNK:
                # Large batches go in chunks, so memory stays flat however many rows.
                tx.conn.execute(insert(t.jobs), rows)
                tx.spill()
                rows = []
            event_id = tx.emit(
                EventType.JOB_QUEUED,
                batch_id,
                job.job_id,
                {
                    "status": JobStatus.QUEUED.value,
                    "row": job.row,
                    "label": job.label,
                    "attempt": 0,
                },
            )
            rows.append(
                {
                    "job_id": job.job_id,
                    "batch_id": batch_id,
                    "row": job.row,
                    "label": job.label,
                    "inputs": dict(job.inputs),
                    "status": JobStatus.QUEUED.value,
                    "phase_index": 0,
                    "phase_count": phase_count,
                    "phase_name": "",
                    "fraction": 0.0,
                    "message": "",
                    "results": {},
                    "phase_seconds": {},
                    "attempts": 0,
                    "created": tx.now,
                    "updated": tx.now,
                    "last_event_id": event_id,
                }
            )
        tx.conn.execute(insert(t.jobs), rows)
        tx.spill()
        tx.conn.execute(
            update(t.batches)
            .where(t.batches.c.batch_id == batch_id)
            .values(
                total=t.batches.c.total + len(jobs),
                n_queued=t.batches.c.n_queued + len(jobs),
                updated=tx.now,
                last_event_id=tx.head,
            )
        )

    def cancel_batch(self, batch_id: str, reason: str = "cancelled by operator") -> int:
        """Cancel every queued job now; running jobs stop at their next phase boundary.

        Returns the number of jobs cancelled at once.
        """
        self.locally_cancelled.add(batch_id)

        def _op(tx: Tx) -> int:
            batch = batch_row(tx.conn, batch_id)
            if batch.status != BatchStatus.RUNNING.value:
                return 0
            if not batch.cancel_requested:
                tx.emit(EventType.BATCH_CANCEL_REQUESTED, batch_id, None, {"reason": reason})
                tx.conn.execute(
                    update(t.batches)
                    .where(t.batches.c.batch_id == batch_id)
                    .values(cancel_requested=True, updated=tx.now)
                )
            queued = tx.conn.execute(
                select(t.jobs).where(
                    t.jobs.c.batch_id == batch_id, t.jobs.c.status == JobStatus.QUEUED.value
                )
            ).all()
            for job in queued:
                self._cancel(tx, job, reason)
            if not queued:
                self._maybe_finish_batch(tx, batch_id, None)
            return len(queued)

        return self._apply(_op)

    def retry_batch(
        self, batch_id: str, statuses: Sequence[JobStatus] = (JobStatus.FAILED,)
    ) -> list[str]:
        """Requeue the batch's jobs in `statuses` (failed by default); returns their ids."""

        def _op(tx: Tx) -> list[str]:
            batch_row(tx.conn, batch_id)  # raises UnknownBatch
            jobs = tx.conn.execute(
                select(t.jobs)
                .where(
                    t.jobs.c.batch_id == batch_id,
                    t.status_is(*(s.value for s in statuses)),
                )
                .order_by(t.jobs.c.row)
            ).all()
            if jobs:
                tx.conn.execute(
                    update(t.batches)
                    .where(t.batches.c.batch_id == batch_id)
                    .values(cancel_requested=False)
                )
            for job in jobs:
                self._requeue(tx, job, "retry")
            return [job.job_id for job in jobs]

        return self._apply(_op)

    def retry_jobs(self, batch_id: str, job_ids: Sequence[str]) -> list[str]:
        """Requeue these failed or cancelled jobs of the batch; returns their ids."""

        def _op(tx: Tx) -> list[str]:
            jobs = tx.conn.execute(
                select(t.jobs).where(
                    t.jobs.c.batch_id == batch_id,
                    t.jobs.c.job_id.in_(list(job_ids)),
                    t.jobs.c.status.in_([JobStatus.FAILED.value, JobStatus.CANCELLED.value]),
                )
            ).all()
            for job in jobs:
                self._requeue(tx, job, "retry")
            return [job.job_id for job in jobs]

        return self._apply(_op)
