"""The progress store: the append-only event log and the job and batch projections.

Every write is one transaction that locks the log head, checks the job state machine,
updates the projections and appends the events. Readers get snapshots (projections) and
events after a cursor; `wait()` blocks on the process's single log feed.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.engine import Engine

from progress import schema as t
from progress.commit import GroupCommitter, Tx
from progress.engine import DEFAULT_URL, create_store_engine, is_sqlite
from progress.errors import (
    IllegalTransition,
    LeaseLost,
    UnknownBatch,
)
from progress.feed import LogFeed
from progress.migrate import ensure_schema
from progress.reads import _CANCEL_REQUESTED, StoreReads
from progress.snapshots import job_snapshot
from progress.status import ALLOWED_TRANSITIONS, BatchStatus, EventType, JobStatus

log = logging.getLogger(__name__)

Clock = Callable[[], float]
R = TypeVar("R")


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


# Statements of the hot path, built once (building them per call costs more than running them).
_UPDATE_JOB = update(t.jobs).where(t.jobs.c.job_id == bindparam("jid"))


_CHUNK = 2000


@functools.cache
def _count_move(old: JobStatus, new: JobStatus) -> Any:
    """The batch-counter update for one kind of job transition (built once per kind)."""
    values: dict[str, Any] = {
        f"n_{old.value}": getattr(t.batches.c, f"n_{old.value}") - 1,
        f"n_{new.value}": getattr(t.batches.c, f"n_{new.value}") + 1,
        "updated": bindparam("b_now"),
        "last_event_id": bindparam("b_eid"),
    }
    if new is JobStatus.RUNNING:
        values["started"] = func.coalesce(t.batches.c.started, bindparam("b_now"))
    return update(t.batches).where(t.batches.c.batch_id == bindparam("bid")).values(**values)


class Store(StoreReads):
    """The durable progress store shared by runners, the sheet writer and every reader.

    Writes are defined here; every read (snapshots, events, waiting) in `StoreReads`.
    """

    def __init__(
        self, engine: Engine, *, clock: Clock = time.time, poll_interval: float = 0.25
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.url = engine.url.render_as_string(hide_password=True)
        self._write_engine = engine.execution_options(sheetbatch_write=True)
        # SQLite has one writer at a time, and its busy handler sleeps in steps of up to
        # 100 ms while it waits: threads of this process queue on a lock instead, which hands
        # over at once. Other processes still meet the busy timeout.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if is_sqlite(engine) else nullcontext()
        )
        self.feed = LogFeed(self._read_after, self.last_event_id, poll_interval=poll_interval)
        self._committer = GroupCommitter(self._begin_write, self.clock, self.feed.poke)
        # Batches cancelled through this Store object: workers of this process see the
        # cancel at once, without a read (other processes read `cancel_requested`).
        self.locally_cancelled: set[str] = set()

    @contextmanager
    def _begin_write(self) -> Iterator[Connection]:
        with self._write_lock, self._write_engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Stop the feed and release every database connection."""
        self.feed.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _apply(self, op: Callable[[Tx], R]) -> R:
        """Run a write in a committed transaction (shared with other threads' writes)."""
        return self._committer.run(op)

    def _update_job(self, tx: Tx, job_id: str, **values: Any) -> None:
        # One prepared statement; the SET clause follows the parameters given.
        tx.conn.execute(_UPDATE_JOB, {"jid": job_id, **values})

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
        self._update_job(
            tx, job.job_id, status=new.value, updated=tx.now, last_event_id=event_id, **values
        )
        tx.conn.execute(
            _count_move(old, new), {"bid": job.batch_id, "b_now": tx.now, "b_eid": event_id}
        )
        if new.terminal:
            self._maybe_finish_batch(tx, job.batch_id)
        elif old.terminal:
            self._maybe_reopen_batch(tx, job.batch_id)
        return event_id

    def _maybe_finish_batch(self, tx: Tx, batch_id: str) -> None:
        batch = tx.conn.execute(select(t.batches).where(t.batches.c.batch_id == batch_id)).one()
        if batch.n_queued + batch.n_running > 0 or batch.status != BatchStatus.RUNNING.value:
            return
        status = BatchStatus.CANCELLED if batch.cancel_requested else BatchStatus.COMPLETED
        counts = {
            "succeeded": batch.n_succeeded,
            "failed": batch.n_failed,
            "cancelled": batch.n_cancelled,
        }
        event_id = tx.emit(
            EventType.BATCH_FINISHED,
            batch_id,
            None,
            {"status": status.value, "total": batch.total, "counts": counts},
        )
        tx.conn.execute(
            update(t.batches)
            .where(t.batches.c.batch_id == batch_id)
            .values(status=status.value, finished=tx.now, updated=tx.now, last_event_id=event_id)
        )

    def _maybe_reopen_batch(self, tx: Tx, batch_id: str) -> None:
        batch = tx.conn.execute(select(t.batches).where(t.batches.c.batch_id == batch_id)).one()
        if batch.status == BatchStatus.RUNNING.value:
            return
        event_id = tx.emit(EventType.BATCH_REOPENED, batch_id, None, {"status": "running"})
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

    def _running_job(self, tx: Tx, job_id: str, owner: str | None) -> Any:
        job = self._job_row(tx.conn, job_id)
        if job.status != JobStatus.RUNNING.value:
            raise IllegalTransition(job_id, job.status, "running (phase event)")
        if owner is not None and job.lease_owner != owner:
            raise LeaseLost(job_id, owner, job.lease_owner)
        return job

    # ------------------------------------------------------------------ batches
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
        """Create a running batch with every job queued; one event per job, one transaction."""
        batch_id = batch_id or new_batch_id()

        def _op(tx: Tx) -> None:
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
                self._maybe_finish_batch(tx, batch_id)

        self._apply(_op)
        return batch_id

    def add_jobs(self, batch_id: str, jobs: Sequence[NewJob]) -> None:
        """Add queued jobs to an existing batch (new rows found when a run resumes)."""
        if not jobs:
            return

        def _op(tx: Tx) -> None:
            batch = tx.conn.execute(
                select(t.batches).where(t.batches.c.batch_id == batch_id)
            ).one_or_none()
            if batch is None:
                raise UnknownBatch(batch_id)
            self._maybe_reopen_batch(tx, batch_id)
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
            batch = tx.conn.execute(
                select(t.batches).where(t.batches.c.batch_id == batch_id)
            ).one_or_none()
            if batch is None:
                raise UnknownBatch(batch_id)
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
                self._move(
                    tx,
                    job,
                    JobStatus.CANCELLED,
                    EventType.JOB_CANCELLED,
                    {"reason": reason},
                    {"finished": tx.now, "error": None},
                )
            if not queued:
                self._maybe_finish_batch(tx, batch_id)
            return len(queued)

        return self._apply(_op)

    def retry_batch(
        self, batch_id: str, statuses: Sequence[JobStatus] = (JobStatus.FAILED,)
    ) -> list[str]:
        """Requeue the batch's jobs in `statuses` (failed by default); returns their ids."""

        def _op(tx: Tx) -> list[str]:
            if (
                tx.conn.execute(
                    select(t.batches.c.batch_id).where(t.batches.c.batch_id == batch_id)
                ).one_or_none()
                is None
            ):
                raise UnknownBatch(batch_id)
            jobs = tx.conn.execute(
                select(t.jobs)
                .where(
                    t.jobs.c.batch_id == batch_id,
                    t.jobs.c.status.in_([s.value for s in statuses]),
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

    def _requeue(self, tx: Tx, job: Any, reason: str) -> None:
        self._move(
            tx,
            job,
            JobStatus.QUEUED,
            EventType.JOB_REQUEUED,
            {"reason": reason, "attempt": job.attempts},
            {
                "phase_index": 0,
                "phase_name": "",
                "fraction": 0.0,
                "message": "",
                "error": None,
                "error_phase": None,
                "finished": None,
                "lease_owner": None,
                "lease_expires": None,
                "results": {},
                "phase_seconds": {},
            },
        )

    # ------------------------------------------------------------------ jobs
    def claim_next(self, batch_id: str, owner: str, lease_seconds: float) -> dict[str, Any] | None:
        """Move the batch's first queued job to running under `owner`'s lease, or None."""

        def _op(tx: Tx) -> dict[str, Any] | None:
            job = tx.conn.execute(
                select(t.jobs)
                .where(t.jobs.c.batch_id == batch_id, t.jobs.c.status == JobStatus.QUEUED.value)
                .order_by(t.jobs.c.row)
                .limit(1)
            ).one_or_none()
            if job is None:
                return None
            self._start(tx, job, owner, lease_seconds)
            return job_snapshot(self._job_row(tx.conn, job.job_id))

        return self._apply(_op)

    def start_job(self, job_id: str, owner: str, lease_seconds: float) -> dict[str, Any]:
        """Move a queued job to running under `owner`'s lease (for workers given a job id)."""

        def _op(tx: Tx) -> dict[str, Any]:
            self._start(tx, self._job_row(tx.conn, job_id), owner, lease_seconds)
            return job_snapshot(self._job_row(tx.conn, job_id))

        return self._apply(_op)

    def _start(self, tx: Tx, job: Any, owner: str, lease_seconds: float) -> None:
        self._move(
            tx,
            job,
            JobStatus.RUNNING,
            EventType.JOB_STARTED,
            {"attempt": job.attempts + 1, "worker": owner},
            {
                "attempts": job.attempts + 1,
                "lease_owner": owner,
                "lease_expires": tx.now + lease_seconds,
                "started": tx.now,
            },
        )

    def phase_started(
        self,
        job_id: str,
        index: int,
        count: int,
        name: str,
        *,
        owner: str | None = None,
        wait: bool = True,
    ) -> int | None:
        """Record that phase `index` (1-based) of `count`, `name`, began (queued: see advance)."""

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner)
            values = self._start_phase(tx, job, index, count, name)
            self._update_job(tx, job.job_id, updated=tx.now, last_event_id=tx.head, **values)
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
        wait: bool = True,
    ) -> int | None:
        """Record progress within the current phase (0..1) and a short message.

        With `wait=False` the write is queued and the caller goes on at once (progress is
        informational; it commits before any later write of the same thread). Returns the
        event id when waited for.
        """

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner)
            return self._phase_event(
                tx,
                job,
                EventType.PHASE_PROGRESS,
                {
                    "index": job.phase_index,
                    "count": job.phase_count,
                    "name": job.phase_name,
                    "fraction": fraction,
                    "message": message,
                },
                {"fraction": fraction, "message": message},
            )

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
        next_phase: tuple[int, int, str] | None = None,
    ) -> int:
        """Record that the current phase ended well, with the job's results so far.

        With `next_phase` (index, count, name) the next phase's start is recorded in the
        same transaction: two events, one commit.
        """

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner)
            values = self._finish_phase(tx, job, seconds, results)
            if next_phase is not None:
                index, count, name = next_phase
                values.update(
                    self._start_phase(tx, job, index, count, name),
                )
            self._update_job(tx, job.job_id, updated=tx.now, last_event_id=tx.head, **values)
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
            job = self._running_job(tx, job_id, owner)
            values = self._finish_phase(tx, job, seconds, results)
            stop = tx.conn.execute(_CANCEL_REQUESTED, {"bid": job.batch_id}).scalar_one()
            if stop:
                self._update_job(tx, job.job_id, updated=tx.now, **values)
                self._move(
                    tx,
                    job,
                    JobStatus.CANCELLED,
                    EventType.JOB_CANCELLED,
                    {"reason": "batch cancelled"},
                    {"finished": tx.now, "lease_owner": None, "lease_expires": None},
                )
                return False
            values.update(self._start_phase(tx, job, *next_phase))
            self._update_job(tx, job.job_id, updated=tx.now, last_event_id=tx.head, **values)
            return True

        if not wait:
            self._committer.submit(_op)
            return None
        return self._apply(_op)

    def _finish_phase(
        self, tx: Tx, job: Any, seconds: float, results: Mapping[str, Any] | None
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

    def _start_phase(self, tx: Tx, job: Any, index: int, count: int, name: str) -> dict[str, Any]:
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

    def _phase_event(
        self,
        tx: Tx,
        job: Any,
        type_: EventType,
        data: Mapping[str, Any],
        values: Mapping[str, Any],
    ) -> int:
        # Phase events change no count, so only the job's row is touched.
        event_id = tx.emit(
            type_, job.batch_id, job.job_id, {"status": job.status, "row": job.row, **data}
        )
        self._update_job(tx, job.job_id, updated=tx.now, last_event_id=event_id, **values)
        return event_id

    def succeed_job(
        self,
        job_id: str,
        outputs: Mapping[str, Any],
        *,
        owner: str | None = None,
        phase_seconds: float | None = None,
        results: Mapping[str, Any] | None = None,
    ) -> int:
        """Finish a running job successfully; `outputs` are its sheet column values.

        With `phase_seconds`, the last phase's end is recorded in the same transaction.
        """

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner)
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
        self, job_id: str, *, phase: str | None, reason: str, owner: str | None = None
    ) -> int:
        """Finish a running job as failed, with the phase and a short human reason."""

        def _op(tx: Tx) -> int:
            job = self._running_job(tx, job_id, owner)
            return self._fail(tx, job, phase, reason)

        return self._apply(_op)

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
        self, job_id: str, reason: str = "cancelled", *, owner: str | None = None
    ) -> int:
        """Cancel a queued or running job."""

        def _op(tx: Tx) -> int:
            job = self._job_row(tx.conn, job_id)
            if (
                owner is not None
                and job.status == JobStatus.RUNNING.value
                and job.lease_owner != owner
            ):
                raise LeaseLost(job_id, owner, job.lease_owner)
            return self._move(
                tx,
                job,
                JobStatus.CANCELLED,
                EventType.JOB_CANCELLED,
                {"reason": reason},
                {"finished": tx.now, "lease_owner": None, "lease_expires": None},
            )

        return self._apply(_op)

    def note(self, job_id: str, message: str, **data: Any) -> int:
        """Append an informational event to a job (e.g. "row deleted from the sheet")."""

        def _op(tx: Tx) -> int:
            job = self._job_row(tx.conn, job_id)
            return tx.emit(
                EventType.JOB_NOTE,
                job.batch_id,
                job_id,
                {"status": job.status, "row": job.row, "message": message, **data},
            )

        return self._apply(_op)

    # ------------------------------------------------------------------ leases
    def heartbeat(self, owner: str, job_ids: Sequence[str], lease_seconds: float) -> int:
        """Renew the leases `owner` holds on `job_ids`; returns how many were renewed."""
        if not job_ids:
            return 0
        with self._write_lock, self._write_engine.begin() as conn:
            result = conn.execute(
                update(t.jobs)
                .where(
                    t.jobs.c.job_id.in_(list(job_ids)),
                    t.jobs.c.lease_owner == owner,
                    t.jobs.c.status == JobStatus.RUNNING.value,
                )
                .values(lease_expires=self.clock() + lease_seconds)
            )
            return int(result.rowcount)

    def requeue_expired(
        self,
        *,
        max_attempts: int,
        owner_alive: Callable[[str], bool | None] | None = None,
        batch_id: str | None = None,
    ) -> list[tuple[str, str]]:
        """Requeue running jobs whose lease expired (or whose owner is known dead).

        A job that already used `max_attempts` attempts fails with reason `abandoned`.
        `owner_alive(owner)` may say False for an owner known dead (a local pid that is
        gone), True for one known alive, None when unknown (the lease decides).
        Returns (job_id, "requeued" | "abandoned") pairs.
        """
        now = self.clock()
        outcome: list[tuple[str, str]] = []

        def _op(tx: Tx) -> None:
            outcome.clear()  # a retried transaction starts over
            query = select(t.jobs).where(t.jobs.c.status == JobStatus.RUNNING.value)
            if batch_id is not None:
                query = query.where(t.jobs.c.batch_id == batch_id)
            for job in tx.conn.execute(query).all():
                alive = owner_alive(job.lease_owner or "") if owner_alive else None
                expired = job.lease_expires is None or job.lease_expires < now
                if alive is True or (alive is None and not expired):
                    continue
                if job.attempts >= max_attempts:
                    self._fail(tx, job, None, "abandoned")
                    outcome.append((job.job_id, "abandoned"))
                else:
                    self._requeue(tx, job, "lease expired")
                    outcome.append((job.job_id, "requeued"))

        self._apply(_op)
        for job_id, what in outcome:
            log.warning("[job %s] worker lost its lease: %s", job_id, what)
        return outcome

    # ------------------------------------------------------------------ cursors
    def set_cursor(self, name: str, position: int) -> None:
        """Save a named reader's position; it never moves backwards."""
        with self._write_lock, self._write_engine.begin() as conn:
            current = conn.execute(
                select(t.cursors.c.position).where(t.cursors.c.name == name).with_for_update()
            ).scalar_one_or_none()
            if current is None:
                conn.execute(
                    insert(t.cursors).values(name=name, position=position, updated=self.clock())
                )
            elif position > current:
                conn.execute(
                    update(t.cursors)
                    .where(t.cursors.c.name == name)
                    .values(position=position, updated=self.clock())
                )


def open_store(
    url: str | None = None, *, clock: Clock = time.time, poll_interval: float = 0.25
) -> Store:
    """Open (creating or upgrading the schema) the store at `url` (SQLite by default)."""
    engine = create_store_engine(url or DEFAULT_URL)
    try:
        ensure_schema(engine, sqlite=is_sqlite(engine))
    except Exception:
        engine.dispose()
        raise
    return Store(engine, clock=clock, poll_interval=poll_interval)
