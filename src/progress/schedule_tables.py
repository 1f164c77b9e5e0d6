"""Tables of schedules, their ticks and leases (schema version 2), and the step that adds them.

Kept apart from `schema.py` so the upgrade step is self-contained: it creates exactly these
tables, whichever other steps a database has been through.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from progress.schema import metadata

schedules = Table(
    "sb_schedules",
    metadata,
    Column("schedule_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("sheet", Text, nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("options", JSON, nullable=False),
    # {"kind": "cron", "cron": EXPR, "timezone": ZONE} or {"kind": "interval", "seconds": N}
    Column("trigger", JSON, nullable=False),
    Column("overlap", String(20), nullable=False),
    Column("catchup", String(20), nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("paused_reason", Text, nullable=True),
    Column("notify", JSON, nullable=False),
    Column("source", String(20), nullable=False),
    # Every due time up to `cursor` has its tick row: the planner starts after it.
    Column("cursor", Float, nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("last_event_id", BigInteger, nullable=False, default=0),
)

# One row per due time: the unique (schedule_id, scheduled_for) makes "at most one tick per
# due time" a database fact, whichever process tries to claim it.
ticks = Table(
    "sb_ticks",
    metadata,
    Column("tick_id", String(64), primary_key=True),
    Column("schedule_id", String(64), nullable=False),
    Column("scheduled_for", Float, nullable=False),
    Column("state", String(20), nullable=False),
    Column("reason", String(40), nullable=True),
    Column("detail", Text, nullable=True),
    Column("manual", Boolean, nullable=False, default=False),
    Column("catchup", Boolean, nullable=False, default=False),
    Column("started", Float, nullable=True),
    Column("finished", Float, nullable=True),
    Column("lag", Float, nullable=True),
    Column("batch_id", String(64), nullable=True),
    Column("rows", Integer, nullable=True),
    Column("scheduler", String(200), nullable=False),
    Column("epoch", BigInteger, nullable=True),
    Column("updated", Float, nullable=False),
    UniqueConstraint("schedule_id", "scheduled_for", name="uq_sb_ticks_due"),
    Index("ix_sb_ticks_batch", "batch_id"),
    Index("ix_sb_ticks_state", "state"),
)

# Named leases with a TTL and an epoch that grows on every change of holder (the scheduler's
# leader lease; any other single-holder role).
leases = Table(
    "sb_leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=True),
    Column("epoch", BigInteger, nullable=False),
    Column("expires", Float, nullable=False),
    Column("acquired", Float, nullable=False),
    Column("renewed", Float, nullable=False),
)

TABLES = (schedules, ticks, leases)


def add_scheduling_tables(conn: Connection) -> None:
    """The upgrade step that adds schedules, ticks and leases to a database without them."""
    for table in TABLES:
        table.create(conn, checkfirst=True)
