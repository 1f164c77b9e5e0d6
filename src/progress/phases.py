"""Phase events: what a running job reports between its start and its end.

`phase_started`, `phase_progress`, `phase_finished` and `advance` (a phase boundary in one
transaction) append `{index, count, name}` events for a job that is running, each fenced:
with an owner (and epoch), the write is refused in its own transaction once the lease moved
on (`_running_job`). `JobTransitions` (`transitions.py`) builds on these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from progress.commit import GroupCommitter, Tx
from progress.errors import IllegalTransition, LeaseLost
from progress.statements import JobRow
from progress.status import EventType, JobStatus

R = TypeVar("R")


class JobPhases:
    """The phase writes of the store (a part of `Store`)."""

    _committer: GroupCommitter

    def _apply(self, op: Callable[[Tx], R]) -> R:
        """Run a write in a committed transaction (shared with other threads' writes)."""
        return self._committer.run(op)

    def _apply_or_queue(self, op: Callable[[Tx], R], wait: bool) -> R | None:
        """`_apply` when `wait`; otherwise queue the write (it commits in order, before any
        later write of the caller) and return None."""
        if wait:
            return self._apply(op)
        self._committer.submit(op)
        return None

    def _cancel(self, tx: Tx, job: Any, reason: str) -> int:
        raise NotImplementedError  # JobTransitions provides it

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

        return self._apply_or_queue(_op, wait)

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

        return self._apply_or_queue(_op, wait)

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

        return self._apply_or_queue(_op, wait)

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
