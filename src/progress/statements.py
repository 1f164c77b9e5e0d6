"""The hot path's statements: plain SQL on the driver's own cursor, inside the open transaction.

Every job transition runs a handful of statements: lock the log head, read the job, update it,
move the batch counters, append the events. Through SQLAlchemy Core each costs 15-25 µs of
Python; on the driver's cursor, 2-7 µs. That matters more than it sounds: the worker threads
share one GIL, and every microsecond a write holds it is a microsecond a finished fetch waits
before it is read (`bench/e2e_throughput.py` measured 35 % of the process's GIL time in
SQLAlchemy before this module). The statements run on the very connection and transaction the
SQLAlchemy `Connection` holds, so they commit and roll back (savepoints too) with it.
Cold paths (batches, retries, leases, migrations, reads) stay on SQLAlchemy Core.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from progress import schema as t
from progress.errors import UnknownBatch, UnknownJob
from progress.pg_session import is_lost_connection
from progress.snapshots import stored_data
from progress.status import JobStatus


class JobRow(NamedTuple):
    """A row of `sb_jobs` with its JSON columns decoded (what `job_snapshot` reads)."""

    job_id: str
    batch_id: str
    row: int
    label: str
    inputs: dict[str, Any]
    status: str
    phase_index: int
    phase_count: int
    phase_name: str
    fraction: float
    message: str
    error: str | None
    error_phase: str | None
    results: dict[str, Any]
    phase_seconds: dict[str, Any]
    attempts: int
    lease_owner: str | None
    lease_expires: float | None
    lease_epoch: int
    dispatched: float | None
    created: float
    started: float | None
    finished: float | None
    updated: float
    last_event_id: int


class BatchCounts(NamedTuple):
    """A batch's status and counters, as a transition leaves them."""

    status: str
    total: int
    n_queued: int
    n_running: int
    n_succeeded: int
    n_failed: int
    n_cancelled: int
    cancel_requested: bool


@dataclass
class _Moves:
    """A batch's counter moves held in one transaction: delta by status, and the last
    move's time and event id."""

    deltas: dict[str, int] = field(default_factory=dict)
    now: float = 0.0
    event_id: int = 0
    started: bool = False


_COMPACT = (",", ":")  # no spaces in stored JSON: a few bytes on every event
_JSON_JOB_COLUMNS = frozenset({"inputs", "results", "phase_seconds"})
_EVENT_COLUMNS = ("id", "type", "batch_id", "job_id", "time", "data")
_JOB_FIELDS = frozenset(JobRow._fields)


def _names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


class _Sql:
    """The statements' text for one driver: SQLite's `:name` or psycopg's `%(name)s`."""

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"
        jobs, batches = t.jobs.name, t.batches.name
        counts = _names(BatchCounts._fields)
        # PostgreSQL: with the transaction's id, to ask after a connection cut at COMMIT
        # whether it committed (`xact_status`).
        self.lock_head = self.render(
            f'SELECT "last_id", pg_current_xact_id()::text FROM {t.log_head.name} '
            'WHERE "id" = 1 FOR UPDATE'
            if self.postgresql
            else f'SELECT "last_id", NULL FROM {t.log_head.name} WHERE "id" = 1'
        )
        self.xact_status = "SELECT pg_xact_status(%(xid)s::xid8)"
        self.set_head = self.render(
            f'UPDATE {t.log_head.name} SET "last_id" = :head WHERE "id" = 1'
        )
        self.notify = "SELECT pg_notify(%(channel)s, %(head)s)"  # PostgreSQL only
        self.insert_events = self.render(
            f"INSERT INTO {t.events.name} ({_names(_EVENT_COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in _EVENT_COLUMNS)})"
        )
        # PostgreSQL: every event in ONE statement (arrays unnested). `executemany` would run
        # in psycopg's pipeline mode, where a backend killed mid-pipeline can surface as
        # "cannot exit pipeline mode while busy" on a connection not yet flagged broken.
        self.insert_event_arrays = (
            f"INSERT INTO {t.events.name} ({_names(_EVENT_COLUMNS)}) "
            "SELECT i, ty, b, j, tm, d::json FROM unnest(%(id)s::bigint[], %(type)s::text[], "
            "%(batch_id)s::text[], %(job_id)s::text[], %(time)s::float8[], %(data)s::text[]) "
            "AS u(i, ty, b, j, tm, d)"
        )
        select_jobs = f"SELECT {_names(JobRow._fields)} FROM {jobs}"
        self.job = self.render(f'{select_jobs} WHERE "job_id" = :jid')
        self.first_queued = self.render(
            f'{select_jobs} WHERE "batch_id" = :bid AND "status" = :queued ORDER BY "row" LIMIT 1'
        )
        self.batch_counts = self.render(f'SELECT {counts} FROM {batches} WHERE "batch_id" = :bid')
        # The counters a transaction moves, locked at their first move until it ends.
        self.lock_counts = self.batch_counts + (" FOR UPDATE" if self.postgresql else "")
        # The claim itself: one conditional UPDATE that succeeds only for a runnable job (queued,
        # or running under a lease that expired) and bumps its lease epoch. On PostgreSQL the
        # condition is re-checked after a concurrent heartbeat commits, so a renewed lease is
        # never taken over.
        self.claim = self.render(
            f'UPDATE {jobs} SET "lease_epoch" = "lease_epoch" + 1 WHERE "job_id" = :jid AND '
            f'("status" = :queued OR ("status" = :running AND '
            f'("lease_expires" IS NULL OR "lease_expires" < :now))) '
            f"RETURNING {_names(JobRow._fields)}"
        )
        self._jobs, self._batches, self._counts = jobs, batches, counts

    def render(self, sql: str) -> str:
        return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql) if self.postgresql else sql

    @functools.cache  # noqa: B019 - one instance per dialect, kept for the process's life
    def update_job(self, columns: tuple[str, ...]) -> str:
        unknown = set(columns) - set(JobRow._fields)
        if unknown:
            raise ValueError(f"not columns of {self._jobs}: {sorted(unknown)}")
        assignments = ", ".join(f'"{c}" = :{c}' for c in columns)
        return self.render(f'UPDATE {self._jobs} SET {assignments} WHERE "job_id" = :jid')

    @functools.cache  # noqa: B019 - one instance per dialect, kept for the process's life
    def move_counts(self, moved: tuple[str, ...], started: bool) -> str:
        """Add `:d_<status>` to the counters of these statuses; the batch's update time and
        last event; its start time when a job started."""
        deltas = "".join(f'"n_{s}" = "n_{s}" + :d_{s}, ' for s in moved)
        start = ', "started" = COALESCE("started", :now)' if started else ""
        return self.render(
            f'UPDATE {self._batches} SET {deltas}"updated" = :now, "last_event_id" = :eid'
            f'{start} WHERE "batch_id" = :bid'
        )


@functools.cache
def _sql(dialect: str) -> _Sql:
    return _Sql(dialect)


class HotStatements:
    """The hot path's statements on the cursor of `conn`'s driver connection (one per Tx)."""

    def __init__(self, conn: Connection) -> None:
        self._sql = _sql(conn.dialect.name)
        self._decode = not self._sql.postgresql  # psycopg decodes json columns itself
        driver: Any = conn.connection.driver_connection
        self._driver = driver
        self._dialect = conn.dialect
        self._cursor: Any = driver.cursor()
        self._driver_error: type[Exception] = conn.dialect.dbapi.Error  # type: ignore[union-attr]
        # Job rows' updates not yet sent, by job id (see `update_job`); batches' counter
        # moves not yet sent and the counters as this transaction has them (`move_counts`).
        self._pending: dict[str, dict[str, Any]] = {}
        self._moves: dict[str, _Moves] = {}
        self._counts: dict[str, BatchCounts] = {}

    def _execute(self, sql: str, params: Any, *, many: bool = False) -> Any:
        try:
            if many:
                return self._cursor.executemany(sql, params)
            return self._cursor.execute(sql, params)
        except self._driver_error as exc:
            # The same exception types SQLAlchemy would raise (OperationalError for a locked
            # database...), so callers handle one set of errors whichever way a statement ran.
            # A cut connection (a killed backend, a restart) is flagged as SQLAlchemy flags
            # its own, so the group committer retries the transaction on a new connection.
            lost = bool(
                self._dialect.is_disconnect(exc, self._driver, self._cursor)  # type: ignore[arg-type]
                or (self._sql.postgresql and is_lost_connection(exc))
            )
            raise DBAPIError.instance(
                sql, params, exc, self._driver_error, connection_invalidated=lost
            ) from exc

    def _one(self, sql: str, params: Mapping[str, Any]) -> Any:
        return self._execute(sql, params).fetchone()

    def _job(self, row: Any) -> JobRow:
        job = JobRow._make(row)
        if self._decode:
            raw: Any = job
            job = job._replace(
                inputs=json.loads(raw.inputs),
                results=json.loads(raw.results),
                phase_seconds=json.loads(raw.phase_seconds),
            )
        pending = self._pending.get(job.job_id)
        return job if pending is None else job._replace(**pending)

    def lock_head(self) -> tuple[int, str | None]:
        """The log head's id, locked until the transaction ends (PostgreSQL: FOR UPDATE),
        and the transaction's id (PostgreSQL; None on SQLite)."""
        head, xid = self._one(self._sql.lock_head, {})
        return int(head), None if xid is None else str(xid)

    def xact_status(self, xid: str) -> str | None:
        """PostgreSQL's word on transaction `xid`: committed, aborted or in progress."""
        row = self._one(self._sql.xact_status, {"xid": xid})
        return None if row is None or row[0] is None else str(row[0])

    def set_head(self, head: int) -> None:
        self._execute(self._sql.set_head, {"head": head})

    def notify(self, channel: str, head: int) -> None:
        """Announce the new log head on `channel` at commit (PostgreSQL)."""
        self._execute(self._sql.notify, {"channel": channel, "head": str(head)})

    def insert_events(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append events (dicts of id, type, batch_id, job_id, time and a JSON-able `data`)."""
        if self._sql.postgresql:
            rows = list(rows)
            columns: dict[str, list[Any]] = {
                name: [row[name] for row in rows] for name in _EVENT_COLUMNS if name != "data"
            }
            columns["data"] = [
                json.dumps(stored_data(row["type"], row["data"]), separators=_COMPACT)
                for row in rows
            ]
            self._execute(self._sql.insert_event_arrays, columns)
            return
        self._execute(
            self._sql.insert_events,
            [
                {
                    **row,
                    "data": json.dumps(stored_data(row["type"], row["data"]), separators=_COMPACT),
                }
                for row in rows
            ],
            many=True,
        )

    def job(self, job_id: str) -> JobRow:
        """The job's row; raises UnknownJob."""
        row = self._one(self._sql.job, {"jid": job_id})
        if row is None:
            raise UnknownJob(job_id)
        return self._job(row)

    def first_queued(self, batch_id: str) -> JobRow | None:
        """The batch's queued job with the lowest row number, or None."""
        # Which job is queued is the rows' status: statuses still pending must be in them.
        self.flush_jobs(lambda _, values: "status" in values)
        row = self._one(self._sql.first_queued, {"bid": batch_id, "queued": JobStatus.QUEUED.value})
        return None if row is None else self._job(row)

    def update_job(self, job_id: str, values: Mapping[str, Any]) -> None:
        """Set these columns of the job (JSON columns given as Python values).

        The update is held until the transaction needs it sent (`flush_jobs`): one job's
        updates in one transaction - a runner's phase boundaries queued without waiting
        often commit together - become ONE row update. On PostgreSQL every update writes a
        new version of the whole row, and a group's versions of the rows in flight, all
        on the same page, pushed rows off their page (1,413 heap bytes a finished row for
        a row of 524). Reads of the job in this transaction (`job`) see the held values.
        """
        unknown = values.keys() - _JOB_FIELDS
        if unknown:
            raise ValueError(f"not columns of {t.jobs.name}: {sorted(unknown)}")
        self._pending.setdefault(job_id, {}).update(values)

    def flush_jobs(self, which: Callable[[str, Mapping[str, Any]], bool] | None = None) -> None:
        """Send the held job updates (only those `which(job_id, values)` selects, if given)."""
        for job_id in [j for j, v in self._pending.items() if which is None or which(j, v)]:
            values = self._pending.pop(job_id)
            params = {
                name: json.dumps(value, separators=_COMPACT) if name in _JSON_JOB_COLUMNS else value
                for name, value in values.items()
            }
            params["jid"] = job_id
            self._execute(self._sql.update_job(tuple(sorted(values))), params)

    def discard_jobs(self) -> None:
        """Forget the held job updates and counter moves (their write was rolled back to a
        savepoint)."""
        self._pending.clear()
        self._moves.clear()
        self._counts.clear()

    def move_counts(
        self, batch_id: str, old: JobStatus, new: JobStatus, now: float, event_id: int
    ) -> BatchCounts:
        """Move one job from `old` to `new` in the batch's counters; the counters after.

        Like job updates, the move is held and sent with the transaction's others to this
        batch as one update (`flush_counts`): each row update is a new version of the row,
        and a group's hundreds of moves of one batch row left hundreds of versions of it
        (a one-row table grew to 2 MB in a 10,000-row batch). The row is locked at the
        first move (SQLite: the transaction holds the write lock), so the counters kept
        here are the row's.
        """
        counts = self.batch_counts(batch_id)
        if counts is None:
            raise UnknownBatch(batch_id)
        counts = counts._replace(
            **{
                f"n_{old.value}": getattr(counts, f"n_{old.value}") - 1,
                f"n_{new.value}": getattr(counts, f"n_{new.value}") + 1,
            }
        )
        self._counts[batch_id] = counts
        held = self._moves.setdefault(batch_id, _Moves())
        held.deltas[old.value] = held.deltas.get(old.value, 0) - 1
        held.deltas[new.value] = held.deltas.get(new.value, 0) + 1
        held.now, held.event_id = now, event_id
        held.started = held.started or new is JobStatus.RUNNING
        return counts

    def batch_counts(self, batch_id: str) -> BatchCounts | None:
        """The batch's counters as this transaction has them (locked from the first read)."""
        counts = self._counts.get(batch_id)
        if counts is None:
            row = self._one(self._sql.lock_counts, {"bid": batch_id})
            if row is None:
                return None
            counts = self._counts[batch_id] = _counts(row)
        return counts

    def flush_counts(self) -> None:
        """Send the held counter moves, and forget the counters read (what runs next on
        the connection may change the batch row)."""
        for batch_id, held in self._moves.items():
            moved = tuple(sorted(s for s, d in held.deltas.items() if d))
            params: dict[str, Any] = {f"d_{s}": held.deltas[s] for s in moved}
            params.update(bid=batch_id, now=held.now, eid=held.event_id)
            self._execute(self._sql.move_counts(moved, held.started), params)
        self._moves.clear()
        self._counts.clear()

    def claim(self, job_id: str, now: float) -> JobRow | None:
        """Bump the job's lease epoch if it is claimable at `now`; the row with its new
        epoch (no second read), or None."""
        self.flush_jobs(lambda held, _: held == job_id)
        row = self._one(
            self._sql.claim,
            {
                "jid": job_id,
                "now": now,
                "queued": JobStatus.QUEUED.value,
                "running": JobStatus.RUNNING.value,
            },
        )
        return None if row is None else self._job(row)

    def cancel_requested(self, batch_id: str) -> bool:
        """Whether the batch was asked to stop, read with its counters (`batch_counts`): one
        read of the batch row per transaction, however many of its jobs the group moves."""
        counts = self.batch_counts(batch_id)
        return bool(counts and counts.cancel_requested)


def _counts(row: Any) -> BatchCounts:
    counts = BatchCounts._make(row)
    return counts._replace(cancel_requested=bool(counts.cancel_requested))
