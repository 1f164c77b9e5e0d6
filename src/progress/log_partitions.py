"""The event log's layout on PostgreSQL: progress reports and transitions in two partitions.

PostgreSQL does not shrink a table when rows are deleted from it: VACUUM makes their space
reusable, but the file keeps its size unless its last pages are left wholly empty. In one log
table the progress reports compaction removes (8 of a 4-phase job's 11 events) sit between
the transitions it keeps, so no page ever empties, and a compacted batch kept the whole
log's size (1,868 heap bytes a finished row). Here `sb_events` is partitioned by event
type: the reports live in `sb_events_reports`, every other event in `sb_events_states`.
Once a compaction has removed the reports of every finished batch, VACUUM truncates the
reports' pages (all of them when no batch runs); while others run, the freed pages are
used again by their reports. Readers see one table: a query on `sb_events` reads both
partitions, in id order through each partition's index.

SQLite keeps one table (there a deleted row's pages go back to the file through
`incremental_vacuum`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from progress import schema as t
from progress.status import EventType

#: The events compaction removes: progress reports within a running job.
PROGRESS_EVENTS = (
    EventType.PHASE_STARTED.value,
    EventType.PHASE_PROGRESS.value,
    EventType.PHASE_FINISHED.value,
)
REPORTS = f"{t.events.name}_reports"
STATES = f"{t.events.name}_states"
PARTITIONS = (REPORTS, STATES)

# The columns as `schema.events` has them (8-byte columns first: no alignment padding).
_COLUMNS = (
    '"id" BIGINT NOT NULL, "time" FLOAT NOT NULL, "type" VARCHAR(40) NOT NULL, '
    '"batch_id" VARCHAR(64) NOT NULL, "job_id" VARCHAR(64), "data" JSON NOT NULL'
)


def is_partitioned(conn: Connection) -> bool:
    """Whether this PostgreSQL database's log is the partitioned one."""
    kind = conn.exec_driver_sql(
        "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%(name)s)",
        {"name": t.events.name},
    ).scalar_one_or_none()
    return kind == "p"


def create_partitioned_log(conn: Connection) -> None:
    """Create `sb_events`, its two partitions and its indexes (PostgreSQL)."""
    reports = ", ".join(f"'{kind}'" for kind in PROGRESS_EVENTS)
    events = t.events.name
    conn.exec_driver_sql(f"CREATE TABLE {events} ({_COLUMNS}) PARTITION BY LIST (type)")
    conn.exec_driver_sql(f"CREATE TABLE {REPORTS} PARTITION OF {events} FOR VALUES IN ({reports})")
    conn.exec_driver_sql(f"CREATE TABLE {STATES} PARTITION OF {events} DEFAULT")
    # A unique index of a partitioned table must hold its partition key, so each partition
    # has its own key on the id: one id is in one partition only, and every id is given out
    # once, by the log head (`sb_log_head`).
    for partition in PARTITIONS:
        conn.exec_driver_sql(f"ALTER TABLE {partition} ADD PRIMARY KEY (id)")
    for index in t.events.indexes:
        columns = ", ".join(f'"{c.name}"' for c in index.columns)
        conn.exec_driver_sql(f"CREATE INDEX {index.name} ON {events} ({columns})")


def partition_log(conn: Connection) -> None:
    """Schema 7 -> 8 on PostgreSQL: move a one-table log into the partitioned one, every
    event kept as it was, in this transaction (a failure leaves schema 7 intact)."""
    if is_partitioned(conn):
        return
    old = f"{t.events.name}_v7"
    names = ", ".join(f'"{c.name}"' for c in t.events.columns)
    conn.exec_driver_sql(f"ALTER TABLE {t.events.name} RENAME TO {old}")
    for index in t.events.indexes:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    conn.exec_driver_sql(f"ALTER TABLE {old} DROP CONSTRAINT IF EXISTS {t.events.name}_pkey")
    create_partitioned_log(conn)
    conn.exec_driver_sql(
        f"INSERT INTO {t.events.name} ({names}) SELECT {names} FROM {old} ORDER BY id"
    )
    conn.exec_driver_sql(f"DROP TABLE {old}")
