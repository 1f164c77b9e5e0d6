"""The progress store: the append-only event log and the job and batch projections.

Every write is one transaction that locks the log head, checks the job state machine,
updates the projections and appends the events (job transitions: `transitions.py`). Readers
get snapshots (projections) and events after a cursor; `wait()` blocks on the process's single
log feed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Engine

from progress import schema as t
from progress.batch_writes import BatchWrites
from progress.budget import DEFAULT_POOL_SIZE, POOL_TIMEOUT, budget_of, listens
from progress.claims import JobClaims
from progress.commit import GroupCommitter, Tx
from progress.compaction import CompactionOps
from progress.deliveries import DeliveryOps
from progress.engine import DEFAULT_URL, create_store_engine, is_sqlite
from progress.feed import LogFeed
from progress.leases import fence
from progress.listener import LogListener, NotifyChannel
from progress.migrate import ensure_schema
from progress.quota_state import QuotaState
from progress.reads import StoreReads
from progress.schedule_model import Fence
from progress.schedules import ScheduleOps
from progress.status import JobStatus
from progress.tick_reads import TickReads
from progress.ticks import TickOps

log = logging.getLogger(__name__)

Clock = Callable[[], float]


FALLBACK_POLL = 2.0  # seconds between head reads while LISTEN/NOTIFY wakes the feed


class Store(
    BatchWrites, JobClaims, StoreReads, ScheduleOps, TickReads, TickOps, DeliveryOps, CompactionOps
):
    """The durable progress store shared by runners, the sheet writer and every reader.

    Lease and cursor writes are defined here; creating, cancelling and retrying batches in
    `BatchWrites`; job transitions in `JobTransitions`,
    fenced claims and the workers' registry in `JobClaims`, named leases in `LeaseOps`;
    every read (snapshots, events, waiting) in `StoreReads`; schedules and their ticks in
    `ScheduleOps`, `TickOps` and `TickReads`; sending the notification outbox in
    `DeliveryOps` (recording it: `outbox.py`, in the outcome's write); compacting finished
    batches and pruning ticks in `CompactionOps`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = time.time,
        poll_interval: float = 0.25,
        fallback_poll: float = FALLBACK_POLL,
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
        # PostgreSQL: every group commit NOTIFYs the new head and the feed LISTENs, so a
        # commit by any process wakes this one's waiters at once; `poll_interval` is then
        # used only while the LISTEN connection is down, `fallback_poll` otherwise. SQLite:
        # in-process commits poke the feed, other processes' are found by the poll. A budget
        # of one connection (`[store] pool_size = 1`) leaves none to LISTEN: PostgreSQL is
        # then followed by the poll too.
        sqlite = is_sqlite(engine)
        listen = not sqlite and listens(budget_of(engine))
        self.feed = LogFeed(
            self._read_after,
            self.last_event_id,
            poll_interval=poll_interval,
            listener=LogListener(engine) if listen else None,
            fallback_poll=fallback_poll,
        )
        self._committer = GroupCommitter(
            self._begin_write,
            self.clock,
            self.feed.poke,
            announce=None if sqlite else NotifyChannel(),
        )
        # Batches cancelled through this Store object: workers of this process see the
        # cancel at once, without a read (other processes read `cancel_requested`).
        self.locally_cancelled: set[str] = set()

    @contextmanager
    def _begin_write(self) -> Iterator[Connection]:
        with self._write_lock, self._write_engine.begin() as conn:
            yield conn

    def quota_state(self) -> QuotaState:
        """Token buckets every process using this store draws from (per credential)."""
        return QuotaState(self._begin_write, self.clock)

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Commit the queued writes, stop the feed and release every database connection."""
        self._committer.close()
        self.feed.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    def set_cursor(self, name: str, position: int, *, guard: Fence | None = None) -> None:
        """Save a named reader's position; it never moves backwards.

        With `guard` the move is refused (NotLeader) unless that lease is still held.
        """
        with self._write_lock, self._write_engine.begin() as conn:
            if guard is not None:
                fence(conn, guard, self.clock())
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
    url: str | None = None,
    *,
    clock: Clock = time.time,
    poll_interval: float = 0.25,
    fallback_poll: float = FALLBACK_POLL,
    create: bool = True,
    pool_size: int = DEFAULT_POOL_SIZE,
    pool_timeout: float = POOL_TIMEOUT,
) -> Store:
    """Open (creating or upgrading the schema) the store at `url` (SQLite by default).

    Without `create`, a store that does not exist yet raises `StoreNotFound`. The log feed
    reads the head every `poll_interval` seconds to see other processes' commits; on
    PostgreSQL they are announced by NOTIFY and the poll runs every `fallback_poll` seconds
    instead (`poll_interval` again while the LISTEN connection is down). On PostgreSQL the
    store holds at most `pool_size` connections, LISTEN included (`progress.budget`).
    """
    engine = create_store_engine(
        url or DEFAULT_URL, create=create, pool_size=pool_size, pool_timeout=pool_timeout
    )
    try:
        ensure_schema(engine, sqlite=is_sqlite(engine), create=create)
    except Exception:
        engine.dispose()
        raise
    return Store(engine, clock=clock, poll_interval=poll_interval, fallback_poll=fallback_poll)
