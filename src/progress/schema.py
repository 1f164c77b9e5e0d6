"""Tables of the progress store and its schema version."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    or_,
    text,
)

# 2: schedules, ticks and leases (`schedule_tables.py`).
# 3: the dashboard's sessions (`sessions` below).
# 4: fenced job claims: a job's lease epoch, when it was last dispatched to a worker queue,
#    and the executor a batch runs on (`migrate.add_job_fencing`).
# 5: the notification outbox (`notify_tables.py`).
# 6: compaction (`migrate.add_compaction`): a batch's `compacted` mark, the (batch, row) index
#    REST pages by, and on SQLite an event id that is the table's rowid (no second index).
# 7: Google quota buckets shared by every process of a credential (`quota_state.py`).
# 8: a small finished row (`migrate.shrink_rows`, issue 14): the jobs' status indexes hold
#    only the rows in that status (queued, running, failed), a job's events are indexed by
#    its id alone, and on PostgreSQL the log is partitioned so compaction gives its progress
#    reports' space back (`log_partitions.py`).
SCHEMA_VERSION = 8

# An event id: BIGINT, but on SQLite exactly "INTEGER PRIMARY KEY", which makes it the rowid
# (any other spelling keeps a separate unique index of every id: ~12 bytes per event).
EventId = BigInteger().with_variant(Integer(), "sqlite")

# Every job, batch, schedule and tick id: URL-safe, and it fits the String(64) key columns.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

metadata = MetaData()


_INDEXED_STATUSES = ("queued", "running", "failed", "cancelled")


def _in_status(status: str) -> Index:
    # No lease column in it: a heartbeat then changes no indexed column, and PostgreSQL can
    # write its new row version in place (a HOT update, no new index entries).
    where = text(f"status = '{status}'")
    return Index(
        f"ix_sb_jobs_{status}", "batch_id", "row", postgresql_where=where, sqlite_where=where
    )


meta = Table(
    "sb_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row. Every writing transaction locks it first and advances `last_id`, so event ids
# are handed out in commit order: a reader that saw id N can never later find an id < N.
log_head = Table(
    "sb_log_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", BigInteger, nullable=False),
)

events = Table(
    "sb_events",
    metadata,
    # The two 8-byte columns first: no alignment padding after the variable-length ones.
    Column("id", EventId, primary_key=True, autoincrement=False),
    Column("time", Float, nullable=False),
    Column("type", String(40), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("data", JSON, nullable=False),
    Index("ix_sb_events_batch", "batch_id", "id"),
    # By job id alone: a job has a handful of events, sorted by id when read. PostgreSQL
    # keeps equal keys once with a list of their rows (~50 bytes for a job's three kept
    # events, 147 as (job_id, id) entries); on SQLite every index entry ends with the rowid,
    # the event id, so this index is in (job, id) order anyway.
    Index("ix_sb_events_of_job", "job_id"),
)

batches = Table(
    "sb_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("sheet", Text, nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("phases", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("total", Integer, nullable=False, default=0),
    Column("n_queued", Integer, nullable=False, default=0),
    Column("n_running", Integer, nullable=False, default=0),
    Column("n_succeeded", Integer, nullable=False, default=0),
    Column("n_failed", Integer, nullable=False, default=0),
    Column("n_cancelled", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("options", JSON, nullable=False),
    Column("created", Float, nullable=False),
    Column("started", Float, nullable=True),
    Column("finished", Float, nullable=True),
    Column("updated", Float, nullable=False),
    Column("last_event_id", BigInteger, nullable=False, default=0),
    # "local" (the in-process pool) or "celery" (rows nudged to workers through a broker).
    Column("executor", String(20), nullable=False, default="local", server_default="local"),
    # Set when the batch's progress reports were compacted away: the log head then. A cursor
    # below it cannot replay the batch exactly, so a stream from it starts from a snapshot.
    Column("compacted", BigInteger, nullable=True),
    Index("ix_sb_batches_status", "status", "created"),
)

jobs = Table(
    "sb_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("batch_id", String(64), nullable=False),
    Column("row", Integer, nullable=False),
    Column("label", Text, nullable=False, default=""),
    Column("inputs", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("phase_index", Integer, nullable=False, default=0),
    Column("phase_count", Integer, nullable=False, default=0),
    Column("phase_name", String(100), nullable=False, default=""),
    Column("fraction", Float, nullable=False, default=0.0),
    Column("message", Text, nullable=False, default=""),
    Column("error", Text, nullable=True),
    Column("error_phase", String(100), nullable=True),
    Column("results", JSON, nullable=False),
    Column("phase_seconds", JSON, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires", Float, nullable=True),
    # Bumped by every claim: a worker's writes name the epoch it claimed at, and are refused
    # once the job was claimed again (its lease expired and another worker took it).
    Column("lease_epoch", Integer, nullable=False, default=0, server_default="0"),
    # When a nudge for this queued job was last sent to the broker (celery executor only).
    Column("dispatched", Float, nullable=True),
    Column("created", Float, nullable=False),
    Column("started", Float, nullable=True),
    Column("finished", Float, nullable=True),
    Column("updated", Float, nullable=False),
    Column("last_event_id", BigInteger, nullable=False, default=0),
    # REST and the dashboard page a batch's rows in row order (`/api/progress/all?cursor=`).
    Index("ix_sb_jobs_batch_row", "batch_id", "row"),
    # The rows a query asks for by status - the next queued row to claim, the running rows
    # whose leases are checked, the failed rows to retry or list - each in an index of only
    # the rows in that status: empty (queued, running) or small (failed, cancelled) once a
    # batch is over, where an index of every row's status cost ~60 bytes a finished row.
    # A query uses one when it names that status with `=` (`status_is`); SQLite and
    # PostgreSQL both tell. Succeeded rows, most of a batch, are read by (batch, row).
    *(_in_status(status) for status in _INDEXED_STATUSES),
)


def status_is(*statuses: str) -> ColumnElement[bool]:
    """A job is in one of these statuses, spelled so the planner uses the statuses' partial
    indexes: `status = 'a' OR status = 'b'` (an IN list matches none of them)."""
    return or_(*(jobs.c.status == status for status in statuses))


# Durable positions of log readers (the sheet writer of each batch keeps one here).
cursors = Table(
    "sb_cursors",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated", Float, nullable=False),
)

# Dashboard sign-ins (schema 3, `migrate.add_sessions`): a row per session, so signing out
# revokes it everywhere and it expires on its own. `key` is an HMAC of the cookie's random id
# under the server's secret (kept in `sb_meta`), so the table alone gives no usable cookie;
# `token_mark` ties it to the API token it was opened with (a new token ends old sessions).
sessions = Table(
    "sb_sessions",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("csrf", String(64), nullable=False),
    Column("token_mark", String(64), nullable=False),
    Column("client", String(200), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Index("ix_sb_sessions_expires", "expires"),
)
