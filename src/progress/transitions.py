"""Job transitions: the writes a job's life is made of, each one transaction.

claim → phase started → progress → boundaries (`advance`) → succeeded | failed | cancelled,
and requeue. Every transition checks the state machine (and the worker's lease), updates the
job and its batch's counters and appends its events in the transaction the group committer
hands it; these are the store's hot path, so they run on `Tx.sql` (see `statements.py`).
`Store` (in `store.py`) adds batches, leases and cursors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import update

from progress import schema as t
from progress.commit import GroupCommitter, Tx
from progress.errors import IllegalTransition, LeaseLost
from progress.outbox import record_batch_outcome
from progress.snapshots import JobSnapshot, job_snapshot
from progress.statements import BatchCounts, JobRow
from progress.status import ALLOWED_TRANSITIONS, BatchStatus, EventType, JobStatus
from progress.ticks import finish_ticks_of_batch

R = TypeVar("R")

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


class JobTransitions:
    """The job writes of the store (a part of `Store`)."""

    _committer: GroupCommitter

    def _apply(self, op: Callable[[Tx], R]) -> R:
        """Run a write in a committed transaction (shared with other threads' writes)."""
        return self._committer.run(op)

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

    @staticmethod
    def _running_job(tx: Tx, job_id: str, owner: str | None, epoch: int | None = None) -> JobRow:
        """The running job, when `owner` (at `epoch`, when given) still holds its lease.

        The check runs in the write's own transaction, after the log head was locked: a
        claim that moved the lease on commits either before it (the write is refused) or
        after the write.
        """
        job = tx.sql.job(job_id)
        if job.status != JobStatus.RUNNING.value:
            raise IllegalTransition(job_id, job.status, "running (phase event)")
        if owner is not None and (
            job.lease_owner != owner or (epoch is not None and job.lease_epoch != epoch)
        ):
            raise LeaseLost(job_id, owner, job.lease_owner, epoch, job.lease_epoch)
        return job

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

    # ------------------------------------------------------------------ phases
    def phase_started(
        self,
        job_id: str,
        index: int,
        count: int,
        name: str,
        *,
        owner: str | None = None,
        epoch: int | None = None,
        wait: bool = True,
    ) -> int | None:
        """Record that phase `index` (1-based) of `count`, `name`, began (queued: see advance)."""

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner, epoch)
            values = self._start_phase(tx, job, index, count, name)
            tx.sql.update_job(job_id, {"updated": tx.now, "last_event_id": tx.head, **values})
            return tx.head

        if not wait:
            self._committer.submit(_op)
            return None
        return self._apply(_op)

    def phase_progress(
        self,
        job_id: str,
        fraction: float,
        message: str = "",
        *,
        owner: str | None = None,
        epoch: int | None = None,
        wait: bool = True,
    ) -> int | None:
        """Record progress within the current phase (0..1) and a short message.

        With `wait=False` the write is queued and the caller goes on at once (progress is
        informational; it commits before any later write of the same thread). Returns the
        event id when waited for.
        """

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner, epoch)
            # Phase events change no count, so only the job's row is touched.
            event_id = tx.emit(
                EventType.PHASE_PROGRESS,
                job.batch_id,
                job_id,
                {
                    "status": job.status,
                    "row": job.row,
                    "index": job.phase_index,
                    "count": job.phase_count,
                    "name": job.phase_name,
                    "fraction": fraction,
                    "message": message,
                },
            )
            tx.sql.update_job(
                job_id,
                {
                    "updated": tx.now,
                    "last_event_id": event_id,
                    "fraction": fraction,
                    "message": message,
                },
            )
            return event_id

        if not wait:
            self._committer.submit(_op)
            return None
        return self._apply(_op)

    def phase_finished(
        self,
        job_id: str,
        *,
        seconds: float,
        results: Mapping[str, Any] | None = None,
        owner: str | None = None,
        epoch: int | None = None,
        next_phase: tuple[int, int, str] | None = None,
    ) -> int:
        """Record that the current phase ended well, with the job's results so far.

        With `next_phase` (index, count, name) the next phase's start is recorded in the
        same transaction: two events, one commit.
        """

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner, epoch)
            values = self._finish_phase(tx, job, seconds, results)
            if next_phase is not None:
                values.update(self._start_phase(tx, job, *next_phase))
            tx.sql.update_job(job_id, {"updated": tx.now, "last_event_id": tx.head, **values})
            return tx.head

        return self._apply(_op)

    def advance(
        self,
        job_id: str,
        *,
        seconds: float,
        next_phase: tuple[int, int, str],
        results: Mapping[str, Any] | None = None,
        owner: str | None = None,
        epoch: int | None = None,
        wait: bool = True,
    ) -> bool | None:
        """A phase boundary in one transaction: finish the current phase, then start the next.

        When the job's batch was asked to stop, the job is cancelled here instead of
        starting the next phase; returns False then. With `wait=False` the write is queued
        (it commits before any later write of the caller) and None is returned: the caller
        learns of a cancel from `cancel_requested`/`locally_cancelled`, or from its next
        waited-for write of the job failing.
        """

        def _op(tx: Tx) -> bool:
            job = self._running_job(tx, job_id, owner, epoch)
            values = self._finish_phase(tx, job, seconds, results)
            if tx.sql.cancel_requested(job.batch_id):
                tx.sql.update_job(job_id, {"updated": tx.now, **values})
                self._cancel(tx, job, "batch cancelled")
                return False
            values.update(self._start_phase(tx, job, *next_phase))
            tx.sql.update_job(job_id, {"updated": tx.now, "last_event_id": tx.head, **values})
            return True

        if not wait:
            self._committer.submit(_op)
            return None
        return self._apply(_op)

    @staticmethod
    def _finish_phase(
        tx: Tx, job: JobRow, seconds: float, results: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        timings = dict(job.phase_seconds or {})
        timings[job.phase_name] = round(seconds, 4)
        tx.emit(
            EventType.PHASE_FINISHED,
            job.batch_id,
            job.job_id,
            {
                "status": job.status,
                "row": job.row,
                "index": job.phase_index,
                "count": job.phase_count,
                "name": job.phase_name,
                "fraction": 1.0,
                "seconds": round(seconds, 4),
            },
        )
        values: dict[str, Any] = {"fraction": 1.0, "phase_seconds": timings}
        if results is not None:
            values["results"] = dict(results)
        return values

    @staticmethod
    def _start_phase(tx: Tx, job: JobRow, index: int, count: int, name: str) -> dict[str, Any]:
        tx.emit(
            EventType.PHASE_STARTED,
            job.batch_id,
            job.job_id,
            {
                "status": JobStatus.RUNNING.value,
                "row": job.row,
                "index": index,
                "count": count,
                "name": name,
                "fraction": 0.0,
            },
        )
        return {
            "phase_index": index,
            "phase_count": count,
            "phase_name": name,
            "fraction": 0.0,
            "message": "",
        }

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
    ) -> int:
        """Finish a running job successfully; `outputs` are its sheet column values.

        With `phase_seconds`, the last phase's end is recorded in the same transaction.
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
            return self._move(
                tx,
                job,
                JobStatus.SUCCEEDED,
                EventType.JOB_SUCCEEDED,
                {"outputs": dict(outputs)},
                values,
            )

        return self._apply(_op)

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
            return tx.emit(
                EventType.JOB_NOTE,
                job.batch_id,
                job_id,
                {"status": job.status, "row": job.row, "message": message, **data},
            )

        return self._apply(_op)
