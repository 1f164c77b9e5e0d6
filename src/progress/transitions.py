"""Job transitions: the writes a job's life is made of, each one transaction.

claim (`claims.py`) → phase events (`phases.py`) → succeeded | failed | cancelled, and
requeue. Every transition checks the state machine (and the worker's lease), updates the
job and its batch's counters and appends its events in the transaction the group committer
hands it; these are the store's hot path, so they run on `Tx.sql` (see `statements.py`).
`Store` (in `store.py`) adds batches, leases and cursors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import update

from progress import schema as t
from progress.commit import Tx
from progress.errors import IllegalTransition
from progress.outbox import record_batch_outcome
from progress.phases import JobPhases
from progress.statements import BatchCounts
from progress.status import ALLOWED_TRANSITIONS, BatchStatus, EventType, JobStatus
from progress.ticks import finish_ticks_of_batch

_REQUEUED_VALUES: dict[str, Any] = {
    "phase_index": 0,
    "phase_name": "",
    "fraction": 0.0,
    "message": "",
    "error": None,
    "error_phase": None,
    "finished": None,
    "lease_owner": None,
    "lease_expires": None,
    "dispatched": None,
    "results": {},
    "phase_seconds": {},
}


class JobTransitions(JobPhases):
    """The job writes of the store (a part of `Store`): the state machine's moves, a
    batch's end and reopening, and the ends of a job. Phase events: `JobPhases`; starting
    a job under a lease: `JobClaims` (`claims.py`)."""

    # ------------------------------------------------------------------ plumbing
    def _move(
        self,
        tx: Tx,
        job: Any,
        new: JobStatus,
        event: EventType,
        data: Mapping[str, Any],
        values: Mapping[str, Any],
    ) -> int:
        """Apply one job transition: check it, update the job and batch, append the event."""
        old = JobStatus(job.status)
        if new not in ALLOWED_TRANSITIONS[old]:
            raise IllegalTransition(job.job_id, old.value, new.value)
        payload = {"status": new.value, "row": job.row, **data}
        event_id = tx.emit(event, job.batch_id, job.job_id, payload)
        tx.sql.update_job(
            job.job_id,
            {"status": new.value, "updated": tx.now, "last_event_id": event_id, **values},
        )
        counts = tx.sql.move_counts(job.batch_id, old, new, tx.now, event_id)
        if new.terminal:
            self._maybe_finish_batch(tx, job.batch_id, counts)
        elif old.terminal:
            self._maybe_reopen_batch(tx, job.batch_id, counts)
        return event_id

    def _maybe_finish_batch(self, tx: Tx, batch_id: str, counts: BatchCounts | None) -> None:
        """Finish the batch when its last job ended (`counts`: the batch as it is now)."""
        if counts is None:
            counts = tx.sql.batch_counts(batch_id)
        if counts is None or counts.n_queued + counts.n_running > 0:
            return
        if counts.status != BatchStatus.RUNNING.value:
            return
        status = BatchStatus.CANCELLED if counts.cancel_requested else BatchStatus.COMPLETED
        event_id = tx.emit(
            EventType.BATCH_FINISHED,
            batch_id,
            None,
            {
                "status": status.value,
                "total": counts.total,
                "counts": {
                    "succeeded": counts.n_succeeded,
                    "failed": counts.n_failed,
                    "cancelled": counts.n_cancelled,
                },
            },
        )
        tx.conn.execute(
            update(t.batches)
            .where(t.batches.c.batch_id == batch_id)
            .values(status=status.value, finished=tx.now, updated=tx.now, last_event_id=event_id)
        )
        # A tick that launched this batch ends with it, in this same transaction.
        finish_ticks_of_batch(tx, batch_id, status.value, counts)
        # Its notifications exist exactly when its outcome does: same transaction.
        record_batch_outcome(tx, batch_id, status.value, counts)

    def _maybe_reopen_batch(self, tx: Tx, batch_id: str, counts: BatchCounts | None) -> None:
        """Reopen a finished batch that has work again."""
        if counts is None:
            counts = tx.sql.batch_counts(batch_id)
        if counts is None or counts.status == BatchStatus.RUNNING.value:
            return
        event_id = tx.emit(
            EventType.BATCH_REOPENED, batch_id, None, {"status": BatchStatus.RUNNING.value}
        )
        tx.conn.execute(
            update(t.batches)
            .where(t.batches.c.batch_id == batch_id)
            .values(
                status=BatchStatus.RUNNING.value,
                finished=None,
                cancel_requested=False,
                updated=tx.now,
                last_event_id=event_id,
            )
        )

    def _cancel(self, tx: Tx, job: Any, reason: str) -> int:
        """The one cancel transition (queued or running -> cancelled), its lease released."""
        return self._move(
            tx,
            job,
            JobStatus.CANCELLED,
            EventType.JOB_CANCELLED,
            {"reason": reason},
            {"finished": tx.now, "lease_owner": None, "lease_expires": None},
        )

    def _requeue(self, tx: Tx, job: Any, reason: str) -> None:
        self._move(
            tx,
            job,
            JobStatus.QUEUED,
            EventType.JOB_REQUEUED,
            {"reason": reason, "attempt": job.attempts},
            _REQUEUED_VALUES,
        )

    # ------------------------------------------------------------------ ending
    def succeed_job(
        self,
        job_id: str,
        outputs: Mapping[str, Any],
        *,
        owner: str | None = None,
        epoch: int | None = None,
        phase_seconds: float | None = None,
        results: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> int | None:
        """Finish a running job successfully; `outputs` are its sheet column values.

        With `phase_seconds`, the last phase's end is recorded in the same transaction. With
        `wait=False` the write is queued (see `advance`) and None is returned: a lost lease
        or a cancelled batch then only shows in the store, whose record wins.
        """

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner, epoch)
            values: dict[str, Any] = {}
            if phase_seconds is not None:
                values = self._finish_phase(tx, job, phase_seconds, results)
            final = dict(values.get("results", job.results) or {})
            final["outputs"] = dict(outputs)
            values.update(
                results=final,
                finished=tx.now,
                fraction=1.0,
                lease_owner=None,
                lease_expires=None,
            )
            # The outputs are stored once, in the job's results; readers of the event get
            # them from there (`reads.events_after`): a succeeded job's results never change.
            return self._move(tx, job, JobStatus.SUCCEEDED, EventType.JOB_SUCCEEDED, {}, values)

        return self._apply_or_queue(_op, wait)

    def fail_job(
        self,
        job_id: str,
        *,
        phase: str | None,
        reason: str,
        owner: str | None = None,
        epoch: int | None = None,
    ) -> int:
        """Finish a running job as failed, with the phase and a short human reason."""
        return self._apply(
            lambda tx: self._fail(tx, self._running_job(tx, job_id, owner, epoch), phase, reason)
        )

    def _fail(self, tx: Tx, job: Any, phase: str | None, reason: str) -> int:
        error = f"{phase}: {reason}" if phase else reason
        return self._move(
            tx,
            job,
            JobStatus.FAILED,
            EventType.JOB_FAILED,
            {"phase": phase, "reason": reason, "error": error},
            {
                "error": error,
                "error_phase": phase,
                "finished": tx.now,
                "lease_owner": None,
                "lease_expires": None,
            },
        )

    def cancel_job(
        self,
        job_id: str,
        reason: str = "cancelled",
        *,
        owner: str | None = None,
        epoch: int | None = None,
    ) -> int:
        """Cancel a queued or running job (a running one only by its lease holder, if named)."""

        def _op(tx: Tx) -> int:
            job = tx.sql.job(job_id)
            if owner is not None and job.status == JobStatus.RUNNING.value:
                job = self._running_job(tx, job_id, owner, epoch)
            return self._cancel(tx, job, reason)

        return self._apply(_op)

    def note(self, job_id: str, message: str, **data: Any) -> int:
        """Append an informational event to a job (e.g. "row deleted from the sheet")."""

        def _op(tx: Tx) -> int:
            job = tx.sql.job(job_id)
            event_id = tx.emit(
                EventType.JOB_NOTE,
                job.batch_id,
                job_id,
                {"status": job.status, "row": job.row, "message": message, **data},
            )
            # Every event of a job moves its last_event_id: a reader that finds the jobs
            # changed since a cursor from the jobs table (the final sheet flush) sees it.
            tx.sql.update_job(job_id, {"last_event_id": event_id})
            return event_id

        return self._apply(_op)
