"""Compaction: the progress reports of finished batches leave the log; transitions stay.

A finished batch's `phase_started`, `phase_progress` and `phase_finished` events are what
most of its log is (8 of a 4-phase job's 11 events). Once the batch is over they say nothing
a reader needs: the job rows keep each job's outcome, error phase and per-phase seconds, and
every state transition (`job_queued`, `job_started`, `job_requeued`, the job's end, notes,
batch events) stays, so the log still replays every job's status history.

The batch's `compacted` column records the log head of the compaction (the batch's last
event then): a stream resumed from a cursor below it might miss removed events, so it starts
from a fresh snapshot instead (`compaction_mark`, used by `sse.plan_stream`). The mark is
set before the first event is removed; the events then go in chunks, each its own short
write, so runners of other batches are never held up by a long transaction.

On PostgreSQL the progress reports have a partition of the log of their own
(`log_partitions.py`): once they are removed, VACUUM gives their pages back to the file
system instead of keeping them for later batches.

Ticks are kept bounded too (`prune_ticks`): a finished tick older than the window goes once
its schedule has `keep` newer ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.engine import Engine

from progress import schema as t
from progress.errors import BatchStillRunning, UnknownBatch, UnknownJob
from progress.leases import fence
from progress.log_partitions import PARTITIONS, PROGRESS_EVENTS
from progress.schedule_model import Fence, TickState
from progress.schedule_tables import ticks
from progress.status import BatchStatus

log = logging.getLogger(__name__)

_TERMINAL_TICKS = tuple(s.value for s in TickState if s.terminal)
CHUNK = 20_000  # events removed per transaction


@dataclass(frozen=True)
class Compaction:
    """What one compaction did: the batches compacted and the events removed."""

    batches: tuple[str, ...]
    events_removed: int


class CompactionOps:
    """Compacting finished batches and pruning old ticks (a part of `Store`)."""

    engine: Engine
    clock: Callable[[], float]
    _write_engine: Engine
    _write_lock: AbstractContextManager[Any] | threading.Lock

    @contextmanager
    def _compaction_tx(self, guard: Fence | None) -> Iterator[Connection]:
        with self._write_lock, self._write_engine.begin() as conn:
            if guard is not None:
                fence(conn, guard, self.clock())
            yield conn

    def compactable(self, *, finished_before: float | None = None) -> list[str]:
        """Finished batches with events newer than their last compaction, oldest first;
        only those finished before `finished_before` when given."""
        b = t.batches.c
        query = (
            select(b.batch_id)
            .where(
                b.status != BatchStatus.RUNNING.value,
                (b.compacted.is_(None)) | (b.compacted < b.last_event_id),
            )
            .order_by(b.finished)
        )
        if finished_before is not None:
            query = query.where(b.finished <= finished_before)
        with self.engine.connect() as conn:
            return [str(v) for v in conn.execute(query).scalars()]

    def compact(
        self,
        batch_ids: Sequence[str] | None = None,
        *,
        finished_before: float | None = None,
        guard: Fence | None = None,
        chunk: int = CHUNK,
    ) -> Compaction:
        """Remove the progress reports of these finished batches (default: every finished
        batch not compacted since its last event, finished before `finished_before`).

        A named batch that still runs raises BatchStillRunning, an unknown one UnknownBatch;
        with `guard` every write is refused (NotLeader) once that lease moved on.
        """
        ids = (
            list(batch_ids)
            if batch_ids is not None
            else self.compactable(finished_before=finished_before)
        )
        removed = 0
        done: list[str] = []
        for batch_id in ids:
            mark = self._mark_compacted(batch_id, guard)
            if mark is None:
                continue
            removed += self._remove_reports(batch_id, mark, guard, chunk)
            done.append(batch_id)
            log.info("compacted batch %s (log head %s)", batch_id, mark)
        if removed:
            self._give_back_space()
        return Compaction(tuple(done), removed)

    def _mark_compacted(self, batch_id: str, guard: Fence | None) -> int | None:
        b = t.batches.c
        with self._compaction_tx(guard) as conn:
            row = conn.execute(
                select(b.status, b.last_event_id, b.compacted).where(b.batch_id == batch_id)
            ).one_or_none()
            if row is None:
                raise UnknownBatch(batch_id)
            if row.status == BatchStatus.RUNNING.value:
                raise BatchStillRunning(batch_id)
            mark = int(row.last_event_id)
            if row.compacted is not None and int(row.compacted) >= mark:
                return None  # nothing happened since the last compaction
            conn.execute(update(t.batches).where(b.batch_id == batch_id).values(compacted=mark))
            return mark

    def _remove_reports(self, batch_id: str, mark: int, guard: Fence | None, chunk: int) -> int:
        e = t.events.c
        removed, low = 0, 0
        while True:
            with self._compaction_tx(guard) as conn:
                # The chunk is an id range of the batch's events (read off its index), so
                # each step scans only its own part of the log.
                high = conn.execute(
                    select(e.id)
                    .where(e.batch_id == batch_id, e.id > low, e.id <= mark)
                    .order_by(e.id)
                    .offset(chunk - 1)
                    .limit(1)
                ).scalar_one_or_none()
                last = mark if high is None else int(high)
                result = conn.execute(
                    delete(t.events).where(
                        e.batch_id == batch_id,
                        e.id > low,
                        e.id <= last,
                        e.type.in_(PROGRESS_EVENTS),
                    )
                )
                removed += int(result.rowcount)
            if high is None:
                return removed
            low = last

    def _give_back_space(self) -> None:
        if self.engine.dialect.name != "sqlite":
            # PostgreSQL keeps a deleted row's space until a VACUUM marks it reusable: do it
            # now rather than when autovacuum gets round to it (it takes no exclusive lock).
            # The job and batch rows too: each transition left a dead row version behind.
            # The log's and the jobs' indexes are rebuilt too: VACUUM frees only an index
            # page all of whose entries went. Compaction removes 8 in 11 entries of a page of
            # old event ids, and new (higher) ids never land there, so such pages stayed
            # mostly empty for good (measured: 1,220 index bytes per row after three batches
            # without the rebuild, 350 with it). CONCURRENTLY takes no lock that holds up
            # writers; like VACUUM it cannot run inside a transaction.
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                for table in (t.events, t.jobs, t.batches, t.log_head):
                    conn.exec_driver_sql(f"VACUUM {table.name}")
                # The log's indexes are its partitions' (`log_partitions.py`); VACUUM and
                # REINDEX of `sb_events` go through to them.
                for name in (*PARTITIONS, t.jobs.name):
                    _drop_leftover_rebuilds(conn, name)
                for table in (t.events, t.jobs):
                    conn.exec_driver_sql(f"REINDEX TABLE CONCURRENTLY {table.name}")
            return
        with self._write_lock, self.engine.connect() as conn:
            # On the driver's own connection, in autocommit: `executescript` steps the
            # vacuum to its end (one `execute` frees a single page), and a checkpoint cannot
            # run inside the transaction SQLAlchemy would begin. A busy reader only makes
            # the checkpoint partial; the pages are free either way.
            driver: Any = conn.connection.driver_connection
            driver.executescript("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")

    def compaction_mark(self, *, batch_id: str | None = None, job_id: str | None = None) -> int:
        """The log head below which a cursor of this scope cannot be replayed exactly
        (0: nothing of it was compacted). Raises UnknownJob / UnknownBatch."""
        b = t.batches.c
        with self.engine.connect() as conn:
            if job_id is not None:
                found = conn.execute(
                    select(t.jobs.c.batch_id).where(t.jobs.c.job_id == job_id)
                ).scalar_one_or_none()
                if found is None:
                    raise UnknownJob(job_id)
                batch_id = str(found)
            if batch_id is not None:
                row = conn.execute(select(b.compacted).where(b.batch_id == batch_id)).one_or_none()
                if row is None:
                    raise UnknownBatch(batch_id)
                return int(row.compacted or 0)
            return int(conn.execute(select(func.coalesce(func.max(b.compacted), 0))).scalar_one())

    def prune_ticks(self, *, keep: int, finished_before: float, guard: Fence | None = None) -> int:
        """Delete finished ticks due before `finished_before` beyond each schedule's `keep`
        newest; returns how many went. Unfinished ticks are never pruned."""
        k = ticks.c
        with self.engine.connect() as conn:
            schedules = [str(v) for v in conn.execute(select(k.schedule_id).distinct()).scalars()]
        pruned = 0
        for schedule_id in schedules:
            with self._compaction_tx(guard) as conn:
                # The `keep`-th newest due time: older ticks may go (the unique index on
                # (schedule_id, scheduled_for) answers this without a scan).
                newest_kept = conn.execute(
                    select(k.scheduled_for)
                    .where(k.schedule_id == schedule_id)
                    .order_by(k.scheduled_for.desc())
                    .offset(max(0, keep - 1))
                    .limit(1)
                ).scalar_one_or_none()
                if newest_kept is None:
                    continue
                result = conn.execute(
                    delete(ticks).where(
                        k.schedule_id == schedule_id,
                        k.scheduled_for < min(float(newest_kept), finished_before),
                        k.state.in_(_TERMINAL_TICKS),
                    )
                )
                pruned += int(result.rowcount)
        return pruned

    def size_bytes(self) -> int:
        """The store's size on disk: SQLite's file and WAL; PostgreSQL's tables and indexes."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
                return int(pages) * int(size) + _wal_bytes(self.engine)
            # The log's partitions hold its rows (`log_partitions.py`): sb_events itself,
            # a partitioned table, has no storage of its own.
            names = [table.name for table in t.metadata.sorted_tables] + list(PARTITIONS)
            total = conn.execute(
                text(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = ANY(:names) AND c.relkind = 'r' "
                    "AND n.nspname = current_schema()"
                ),
                {"names": names},
            ).scalar_one()
            return int(total)


def _wal_bytes(engine: Engine) -> int:
    database = engine.url.database
    if not database or database == ":memory:":
        return 0
    wal = Path(database + "-wal")
    return wal.stat().st_size if wal.exists() else 0


# An index REINDEX CONCURRENTLY builds beside the old one is named `<index>_ccnew[N]`; a
# rebuild cut off half-way (a cancel, a killed backend, a server restart) leaves it behind,
# invalid: never used by a query, yet kept up to date by every write, and the next rebuild
# skips it. Such leftovers are dropped before the next rebuild.
_LEFTOVERS = (
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE i.indrelid = CAST(%(table)s AS regclass) AND NOT i.indisvalid"
    " AND c.relname ~ '_ccnew[0-9]*$'"
)


def _drop_leftover_rebuilds(conn: Any, table: str) -> None:
    for (name,) in conn.exec_driver_sql(_LEFTOVERS, {"table": table}).all():
        log.warning("dropping %s, left behind by an interrupted index rebuild", name)
        conn.exec_driver_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
