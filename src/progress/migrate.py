"""Creating the schema, and upgrading or refusing a database written by another version."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from sqlalchemy import Connection, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, IntegrityError, ProgrammingError

from progress import schema as t
from progress.errors import STORE_SETTING, SchemaVersionError, StoreNotFound, StoreUnavailable
from progress.log_partitions import create_partitioned_log, partition_log
from progress.notify_tables import add_notifications
from progress.quota_state import add_quota_buckets
from progress.schedule_tables import add_scheduling_tables

log = logging.getLogger(__name__)

Migration = Callable[[Connection], None]


def add_sessions(conn: Connection) -> None:
    """Schema 2 -> 3: the dashboard's server-side sessions (`sb_sessions`)."""
    t.sessions.create(conn, checkfirst=True)


def add_job_fencing(conn: Connection) -> None:
    """Schema 3 -> 4: a job's lease epoch and dispatch time, a batch's executor (issue 13)."""
    have = {
        table: {c["name"] for c in inspect(conn).get_columns(table)}
        for table in (t.jobs.name, t.batches.name)
    }
    added = (
        (t.jobs.name, "lease_epoch", "INTEGER NOT NULL DEFAULT 0"),
        (t.jobs.name, "dispatched", "FLOAT"),
        (t.batches.name, "executor", "VARCHAR(20) NOT NULL DEFAULT 'local'"),
    )
    for table, column, kind in added:
        if column not in have[table]:
            conn.exec_driver_sql(f'ALTER TABLE {table} ADD COLUMN "{column}" {kind}')


def add_compaction(conn: Connection) -> None:
    """Schema 5 -> 6: a batch's `compacted` mark and the (batch, row) index of its jobs; on
    SQLite the events table is rebuilt so its id is the rowid (issue 14: bytes per row)."""
    have = {c["name"] for c in inspect(conn).get_columns(t.batches.name)}
    if "compacted" not in have:
        conn.exec_driver_sql(f'ALTER TABLE {t.batches.name} ADD COLUMN "compacted" BIGINT')
    indexes = {i["name"] for i in inspect(conn).get_indexes(t.jobs.name)}
    for index in t.jobs.indexes:
        if index.name not in indexes:
            index.create(conn)
    if conn.dialect.name == "sqlite":
        _rebuild_sqlite_events(conn)


def _rebuild_sqlite_events(conn: Connection) -> None:
    # SQLite cannot change a primary key in place: copy the log into the new form, in log
    # order, in this same transaction (a crash leaves the old schema and version intact).
    old = f"{t.events.name}_v5"
    columns = ", ".join(f'"{c.name}"' for c in t.events.columns)
    conn.exec_driver_sql(f"ALTER TABLE {t.events.name} RENAME TO {old}")
    for index in t.events.indexes:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    t.events.create(conn)
    conn.exec_driver_sql(
        f"INSERT INTO {t.events.name} ({columns}) SELECT {columns} FROM {old} ORDER BY id"
    )
    conn.exec_driver_sql(f"DROP TABLE {old}")


# The indexes schema 8 replaced by those of `schema.jobs` and `schema.events`.
_V7_INDEXES = ("ix_sb_jobs_batch_status", "ix_sb_jobs_lease", "ix_sb_events_job")


def shrink_rows(conn: Connection) -> None:
    """Schema 7 -> 8: the small finished row (issue 14). The jobs' status indexes become
    partial ones and a job's events are indexed by its id alone; on PostgreSQL the log is
    moved into its partitions (`log_partitions.py`). Every row is kept as it is."""
    for name in _V7_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    if conn.dialect.name == "postgresql":
        partition_log(conn)
    for table in (t.jobs, t.events):
        have = {i["name"] for i in inspect(conn).get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have:
                index.create(conn)


def create_tables(conn: Connection) -> None:
    """Every table of the current schema, in a database that has none of them."""
    if conn.dialect.name != "postgresql":
        t.metadata.create_all(conn)
        return
    t.metadata.create_all(conn, tables=[x for x in t.metadata.sorted_tables if x is not t.events])
    create_partitioned_log(conn)


# from_version -> the step that upgrades a database to from_version + 1.
MIGRATIONS: Mapping[int, Migration] = {
    1: add_scheduling_tables,
    2: add_sessions,
    3: add_job_fencing,
    4: add_notifications,
    5: add_compaction,
    6: add_quota_buckets,
    7: shrink_rows,
}


def ensure_schema(
    engine: Engine,
    *,
    sqlite: bool,
    target: int = t.SCHEMA_VERSION,
    migrations: Mapping[int, Migration] = MIGRATIONS,
    create: bool = True,
) -> int:
    """Create the tables of a new database, upgrade an older one, refuse a newer one.

    Without `create`, a database without the store's tables raises `StoreNotFound`
    instead of being given them. A file that is not a database raises `StoreUnavailable`.
    Returns the schema version the database has afterwards.
    """
    where = engine.url.render_as_string(hide_password=True)
    try:
        return _ensure_schema(engine, where, target, migrations, create)
    except DatabaseError as exc:
        if isinstance(exc, IntegrityError | ProgrammingError):
            raise
        raise StoreUnavailable(
            f"cannot open the progress store {where}: {_first_line(exc.orig)}; "
            f"point {STORE_SETTING} at a sheetbatch progress store, or at a new file"
        ) from exc


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error) else "error"


def _ensure_schema(
    engine: Engine,
    where: str,
    target: int,
    migrations: Mapping[int, Migration],
    create: bool,
) -> int:
    try:
        with engine.begin() as conn:
            existing = set(inspect(conn).get_table_names())
            if "sb_meta" not in existing:
                if existing & {"sb_events", "sb_jobs", "sb_batches"}:
                    raise SchemaVersionError(
                        f"{where}: has sheetbatch tables "
                        "but no schema version; it was not written by a released sheetbatch"
                    )
                if not create:
                    raise StoreNotFound(
                        f"no progress store at {where}; run a batch first, "
                        f"or point {STORE_SETTING} at one"
                    )
                create_tables(conn)
                conn.execute(t.meta.insert().values(key="schema_version", value=str(target)))
                conn.execute(t.log_head.insert().values(id=1, last_id=0))
                return target
    except (IntegrityError, ProgrammingError):
        # Another process created the schema at the same moment: read what it wrote.
        log.info("schema created concurrently by another process")
    with engine.begin() as conn:
        version = int(
            conn.execute(
                select(t.meta.c.value).where(t.meta.c.key == "schema_version")
            ).scalar_one()
        )
        if version > target:
            raise SchemaVersionError(
                f"{where} has schema version {version}, but this sheetbatch understands up to "
                f"{target}: upgrade sheetbatch, or point {STORE_SETTING} at another database"
            )
        while version < target:
            step = migrations.get(version)
            if step is None:
                raise SchemaVersionError(
                    f"{where} has schema version {version} and there is no upgrade path to "
                    f"{target}: export its events and use a new database"
                )
            log.warning("upgrading the progress store schema %s -> %s", version, version + 1)
            step(conn)
            version += 1
            conn.execute(
                t.meta.update().where(t.meta.c.key == "schema_version").values(value=str(version))
            )
        return version
