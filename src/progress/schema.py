"""Tables of the progress store and its schema version."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# 2: schedules, ticks and leases (`schedule_tables.py`).
# 3: the dashboard's sessions (`sessions` below).
# 4: fenced job claims: a job's lease epoch, when it was last dispatched to a worker queue,
#    and the executor a batch runs on (`migrate.add_job_fencing`).
# 5: the notification outbox (`notify_tables.py`).
# 6: compaction (`migrate.add_compaction`): a batch's `compacted` mark, the (batch, row) index
#    REST pages by, and on SQLite an event id that is the table's rowid (no second index).
# 7: Google quota buckets shared by every process of a credential (`quota_state.py`).
SCHEMA_VERSION = 7

# An event id: BIGINT, but on SQLite exactly "INTEGER PRIMARY KEY", which makes it the rowid
# (any other spelling keeps a separate unique index of every id: ~12 bytes per event).
EventId = BigInteger().with_variant(Integer(), "sqlite")

# Every job, batch, schedule and tick id: URL-safe, and it fits the String(64) key columns.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

metadata = MetaData()

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
    Column("id", EventId, primary_key=True, autoincrement=False),
    Column("type", String(40), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("time", Float, nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_sb_events_batch", "batch_id", "id"),
    Index("ix_sb_events_job", "job_id", "id"),
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
    Index("ix_sb_jobs_batch_status", "batch_id", "status", "row"),
    # REST and the dashboard page a batch's rows in row order (`/api/progress/all?cursor=`).
    Index("ix_sb_jobs_batch_row", "batch_id", "row"),
    Index("ix_sb_jobs_lease", "status", "lease_expires"),
)

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
