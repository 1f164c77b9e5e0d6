"""Reading the progress store: snapshots, events after a cursor, and waiting for more.

Every reader - REST, SSE streams, the sheet writer, the terminal bar - reads through these
methods; `Store` (in `store.py`) adds the writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, distinct, func, select, tuple_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from progress import schema as t
from progress.errors import UnknownBatch, UnknownJob
from progress.feed import LogFeed
from progress.snapshots import (
    BatchSnapshot,
    JobSnapshot,
    LogEvent,
    batch_snapshot,
    event_dict,
    job_snapshot,
    outputs_elsewhere,
)
from progress.status import BatchStatus, JobStatus

_JOB_BY_ID = select(t.jobs).where(t.jobs.c.job_id == bindparam("jid"))
_BATCH_BY_ID = select(t.batches).where(t.batches.c.batch_id == bindparam("bid"))
_LOG_HEAD = select(t.log_head.c.last_id).where(t.log_head.c.id == 1)
_CANCEL_REQUESTED = select(t.batches.c.cancel_requested).where(
    t.batches.c.batch_id == bindparam("bid")
)

_IDS_PER_QUERY = 500

R = TypeVar("R")


def once_more_if_dropped(engine: Engine, fetch: Callable[[Connection], R]) -> R:
    """`fetch` on a pooled connection, asked again once on a fresh one when the connection
    turned out dead (a PostgreSQL backend killed or restarted after the pool handed it out).
    The reads a running row makes at every phase boundary must not fail the row over a
    connection that died between two of them."""
    for last in (False, True):
        try:
            with engine.connect() as conn:
                return fetch(conn)
        except DBAPIError as exc:
            if last or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


_STATUS_COUNTS = select(
    t.batches.c.status,
    func.count(),
    *(func.coalesce(func.sum(t.batches.c[f"n_{s.value}"]), 0) for s in JobStatus),
).group_by(t.batches.c.status)


@dataclass(frozen=True)
class StatusCounts:
    """How many batches and jobs the store holds by status (every status present, 0 or more)."""

    batches: Mapping[str, int]
    jobs: Mapping[str, int]


def log_head(conn: Connection) -> int:
    """The id of the newest event committed as `conn` sees the database."""
    return int(conn.execute(_LOG_HEAD).scalar_one())


def job_row(conn: Connection, job_id: str) -> Any:
    """The job's row as `conn` sees it; raises UnknownJob."""
    row = conn.execute(_JOB_BY_ID, {"jid": job_id}).one_or_none()
    if row is None:
        raise UnknownJob(job_id)
    return row


def batch_row(conn: Connection, batch_id: str) -> Any:
    """The batch's row as `conn` sees it; raises UnknownBatch."""
    row = conn.execute(_BATCH_BY_ID, {"bid": batch_id}).one_or_none()
    if row is None:
        raise UnknownBatch(batch_id)
    return row


def _outputs_of_succeeded(conn: Connection, rows: Sequence[Any]) -> dict[str, Any]:
    """The outputs of the jobs whose `job_succeeded` events are among `rows` without them,
    by job id: read from the jobs' results, a few hundred ids a query."""
    ids = sorted({row.job_id for row in rows if outputs_elsewhere(row)})
    found: dict[str, Any] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        query = select(t.jobs.c.job_id, t.jobs.c.results).where(
            t.jobs.c.job_id.in_(ids[start : start + _IDS_PER_QUERY])
        )
        for job_id, results in conn.execute(query):
            found[job_id] = (results or {}).get("outputs", {})
    return found


class StoreReads:
    """The read side of the store: consistent snapshots and the log after a cursor."""

    engine: Engine
    clock: Callable[[], float]
    feed: LogFeed

    def get_cursor(self, name: str) -> int:
        """A named reader's durable position in the log (0 when new)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(t.cursors.c.position).where(t.cursors.c.name == name)
            ).scalar_one_or_none()
        return int(value or 0)

    def last_event_id(self) -> int:
        """The id of the newest committed event (0 for an empty log)."""
        with self.engine.connect() as conn:
            return log_head(conn)

    def job(self, job_id: str) -> JobSnapshot:
        """The job's snapshot; raises UnknownJob."""
        row = once_more_if_dropped(self.engine, lambda conn: job_row(conn, job_id))
        return job_snapshot(row)

    def find_job(self, job_id: str) -> JobSnapshot | None:
        """The job's snapshot, or None when unknown."""
        try:
            return self.job(job_id)
        except UnknownJob:
            return None

    def jobs(
        self,
        *,
        batch_id: str | None = None,
        statuses: Sequence[JobStatus] | None = None,
        job_ids: Sequence[str] | None = None,
        after_row: tuple[str, int] | None = None,
        limit: int | None = None,
    ) -> list[JobSnapshot]:
        """Job snapshots, ordered by (batch, row), optionally filtered and paginated.

        A page after `after_row` (batch, row) is a range read of the (batch, row) index, so
        its cost does not grow with the batch: the 1000th page of a 500,000-row batch costs
        what the first does.
        """
        c = t.jobs.c
        if batch_id is not None:
            query = select(t.jobs).where(c.batch_id == batch_id).order_by(c.row, c.job_id)
            if after_row is not None:
                b, r = after_row
                if b > batch_id:
                    return []
                if b == batch_id:
                    query = query.where(c.row > r)
        else:
            query = select(t.jobs).order_by(c.batch_id, c.row, c.job_id)
            if after_row is not None:
                query = query.where(tuple_(c.batch_id, c.row) > tuple_(*after_row))
        if statuses:
            query = query.where(t.status_is(*(JobStatus(s).value for s in statuses)))
        if job_ids is not None:
            query = query.where(c.job_id.in_(list(job_ids)))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        # Built after the read's transaction ended: snapshots of a whole big batch take
        # longer than PostgreSQL lets a session idle inside a transaction (`pg_session`).
        return [job_snapshot(row) for row in rows]

    def job_ids(self, batch_id: str) -> list[str]:
        """Every job id of the batch, in row order."""
        query = select(t.jobs.c.job_id).where(t.jobs.c.batch_id == batch_id).order_by(t.jobs.c.row)
        with self.engine.connect() as conn:
            return [str(v) for v in conn.execute(query).scalars()]

    def job_id_pages(
        self,
        batch_id: str,
        size: int = 5000,
        *,
        statuses: Sequence[JobStatus] = (),
        unstarted: bool = False,
    ) -> Iterator[list[str]]:
        """Every job id of the batch in row order, `size` at a time: each page is a range
        read of the (batch, row) index, so a 500,000-row batch is never held at once.
        `statuses`: only jobs in one of them; `unstarted`: only jobs never attempted."""
        c = t.jobs.c
        last: tuple[int, str] | None = None
        while True:
            query = select(c.row, c.job_id).where(c.batch_id == batch_id)
            if statuses:
                query = query.where(t.status_is(*(JobStatus(s).value for s in statuses)))
            if unstarted:
                query = query.where(c.attempts == 0)
            if last is not None:
                query = query.where(tuple_(c.row, c.job_id) > tuple_(*last))
            with self.engine.connect() as conn:
                page = conn.execute(query.order_by(c.row, c.job_id).limit(size)).all()
            if not page:
                return
            yield [str(job_id) for _, job_id in page]
            if len(page) < size:
                return
            last = (int(page[-1][0]), str(page[-1][1]))

    def batch(self, batch_id: str) -> BatchSnapshot:
        """The batch's snapshot with counts, percent, elapsed and ETA; raises UnknownBatch."""
        row = once_more_if_dropped(self.engine, lambda conn: batch_row(conn, batch_id))
        return batch_snapshot(row, self.clock())

    def batches(
        self, *, status: BatchStatus | None = None, sheet: str | None = None, limit: int = 100
    ) -> list[BatchSnapshot]:
        """Batch snapshots, newest first."""
        query = select(t.batches).order_by(t.batches.c.created.desc()).limit(limit)
        if status is not None:
            query = query.where(t.batches.c.status == BatchStatus(status).value)
        if sheet is not None:
            query = query.where(t.batches.c.sheet == sheet)
        now = self.clock()
        with self.engine.connect() as conn:
            return [batch_snapshot(row, now) for row in conn.execute(query)]

    def status_counts(self) -> StatusCounts:
        """Batches and jobs by status, from the batches' counters in one aggregate query
        (for /metrics: no snapshot is built, however many batches there are)."""
        batches = dict.fromkeys((s.value for s in BatchStatus), 0)
        jobs = dict.fromkeys((s.value for s in JobStatus), 0)
        with self.engine.connect() as conn:
            rows = conn.execute(_STATUS_COUNTS).all()
        for status, count, *per_job_status in rows:
            batches[str(status)] = batches.get(str(status), 0) + int(count)
            for job_status, n in zip(JobStatus, per_job_status, strict=True):
                jobs[job_status.value] += int(n)
        return StatusCounts(batches=batches, jobs=jobs)

    def leases(self, batch_id: str) -> list[tuple[str, float]]:
        """(owner, lease expiry) of every running job of the batch."""
        query = select(t.jobs.c.lease_owner, t.jobs.c.lease_expires).where(
            t.jobs.c.batch_id == batch_id, t.jobs.c.status == JobStatus.RUNNING.value
        )
        with self.engine.connect() as conn:
            return [(str(o or ""), float(e or 0.0)) for o, e in conn.execute(query)]

    def cancel_requested(self, batch_id: str) -> bool:
        """Whether the batch was asked to stop."""
        value = once_more_if_dropped(
            self.engine,
            lambda conn: conn.execute(_CANCEL_REQUESTED, {"bid": batch_id}).scalar_one_or_none(),
        )
        return bool(value)

    def events_after(
        self,
        after: int,
        *,
        batch_id: str | None = None,
        job_id: str | None = None,
        limit: int = 1000,
    ) -> list[LogEvent]:
        """Events with id > `after` in log order from the database, optionally filtered."""
        query = select(t.events).where(t.events.c.id > after).order_by(t.events.c.id).limit(limit)
        if batch_id is not None:
            query = query.where(t.events.c.batch_id == batch_id)
        if job_id is not None:
            query = query.where(t.events.c.job_id == job_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            outputs = _outputs_of_succeeded(conn, rows)
        return [event_dict(row, outputs.get(row.job_id)) for row in rows]

    def event_refs_after(
        self, after: int, *, batch_id: str, limit: int = 5000
    ) -> list[tuple[int, str | None]]:
        """(id, job_id) of the batch's events after `after`, in log order.

        For readers that only need to know which jobs moved (the sheet writer): no event
        data is decoded.
        """
        query = (
            select(t.events.c.id, t.events.c.job_id)
            .where(t.events.c.id > after, t.events.c.batch_id == batch_id)
            .order_by(t.events.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(int(event_id), job_id) for event_id, job_id in conn.execute(query)]

    def jobs_moved_after(self, after: int, *, batch_id: str) -> int:
        """How many of the batch's jobs have events after `after` (counted by the database:
        no id is held here, however many moved)."""
        query = select(func.count(distinct(t.events.c.job_id))).where(
            t.events.c.id > after, t.events.c.batch_id == batch_id
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def follow(
        self,
        after: int,
        *,
        batch_id: str | None = None,
        job_id: str | None = None,
        limit: int = 1000,
    ) -> list[LogEvent]:
        """Like `events_after`, served from the process's feed buffer when it reaches back.

        For live followers (SSE streams) after `wait()`: the buffer holds every event up to
        the feed's head, so many streams share one database read per append. It may lag the
        database by one feed cycle; `wait()` wakes the follower again when it catches up. A
        read from before the buffer's first event fills the gap once (`LogFeed.backfill`)
        when it is short, so the streams that follow from there are served from memory too.
        """
        buffered = self.feed.buffered_after(after, 1_000_000)
        if buffered is None:
            upto = self.feed.gap_before(after)
            if upto is not None and self.feed.backfill(self._read_after(after, upto - after)):
                buffered = self.feed.buffered_after(after, 1_000_000)
        if buffered is None:
            return self.events_after(after, batch_id=batch_id, job_id=job_id, limit=limit)
        out: list[LogEvent] = []
        for event in buffered:
            if (batch_id is None or event["batch_id"] == batch_id) and (
                job_id is None or event["job_id"] == job_id
            ):
                out.append(event)
                if len(out) >= limit:
                    break
        return out

    def _read_after(self, after: int, limit: int) -> list[LogEvent]:
        # The feed's reader: the whole log, unfiltered.
        return self.events_after(after, limit=limit)

    def wait(self, after: int, timeout: float) -> int:
        """Block until an event newer than `after` exists or `timeout` passes; the newest id."""
        return self.feed.wait(after, timeout)
