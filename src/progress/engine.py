"""Opening a database for the store: SQLite (default) or PostgreSQL, by URL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from progress.budget import DEFAULT_POOL_SIZE, POOL_TIMEOUT, budget_pool_args, install_budget
from progress.errors import STORE_SETTING, StoreNotFound, StoreUnavailable
from progress.pg_session import configure_postgresql

DEFAULT_URL = "sqlite:///.sheetbatch/progress.db"


_SCHEMES = ("sqlite://", "postgresql://", "postgres://", "postgresql+psycopg://")
_URL_FORMS = "sqlite:///path/to/progress.db or postgresql://user@host/dbname"


def normalize_url(url: str) -> str:
    """Accept `sqlite:///…`, `postgresql://…` or `postgres://…`; refuse anything else.

    A mistyped store must not silently become a new, empty one: a bare word such as
    `garbage` is refused instead of being taken for a SQLite file of that name.
    """
    text = url.strip()
    if not text.lower().startswith(_SCHEMES):
        raise StoreUnavailable(f"{url!r} is not a store URL; use {_URL_FORMS}", about_url=True)
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    if text.startswith("postgresql://"):
        text = "postgresql+psycopg://" + text[len("postgresql://") :]
    return text


def compact_json(value: Any) -> str:
    """JSON as the store keeps it: without the spaces `json.dumps` puts after , and :."""
    return json.dumps(value, separators=(",", ":"))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///…` URL (None for another database)."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(parsed.database or "")


def create_store_engine(
    url: str,
    *,
    create: bool = True,
    pool_size: int = DEFAULT_POOL_SIZE,
    pool_timeout: float = POOL_TIMEOUT,
) -> Engine:
    """An engine configured for the store: WAL and busy_timeout on SQLite, a pool on PostgreSQL.

    A SQLite file is created only in a directory that exists (the default store's
    `.sheetbatch/` is made); without `create`, a missing SQLite file raises `StoreNotFound`.
    On PostgreSQL the process holds at most `pool_size` connections, its LISTEN connection
    included (`progress.budget`); a thread waits up to `pool_timeout` seconds for one. A
    SQLite file has no server whose slots run out: its pool stays as wide as its threads.
    """
    from sqlalchemy import create_engine

    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(f"not a database URL: {url!r}", about_url=True) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise StoreUnavailable(
                "an in-memory SQLite database cannot be shared; use a file", about_url=True
            )
        _check_sqlite_file(Path(database), default=url == DEFAULT_URL, create=create)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=40,
            max_overflow=40,
            json_serializer=compact_json,
        )
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        engine = create_engine(
            url,
            **budget_pool_args(pool_size, pool_timeout),
            pool_pre_ping=True,
            pool_recycle=1800,
            json_serializer=compact_json,
        )
        configure_postgresql(engine)
        install_budget(engine, pool_size)
        return engine
    raise StoreUnavailable(f"unsupported database {backend!r}; use {_URL_FORMS}", about_url=True)


def _check_sqlite_file(path: Path, *, default: bool, create: bool) -> None:
    if path.is_dir():
        raise StoreUnavailable(f"{path} is a directory; name a file in it", about_url=True)
    if path.exists():
        return
    if not create:
        raise StoreNotFound(
            f"no progress store at {path}; run a batch first, or point {STORE_SETTING} at one"
        )
    directory = path.parent
    if default:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create {directory} for the progress store: {exc.strerror}"
            ) from exc
    elif not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise StoreUnavailable(
            f"{directory} {what}; create it first, or point {STORE_SETTING} at another file",
            about_url=True,
        )


#: Page cache per SQLite connection, in KiB (negative: SQLite's unit for a size in KiB).
SQLITE_CACHE_KIB = -512


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's begin event decide how a transaction starts (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First: a pragma below may have to wait for another process's write.
        cursor.execute("PRAGMA busy_timeout=30000")
        # In a new, empty file: compaction can then give the pages it frees back to the
        # file system (`PRAGMA incremental_vacuum`). Only there: elsewhere it is a no-op
        # that still takes the write lock, so every connection opened while another
        # process wrote would wait for that write to end.
        if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Each connection has a page cache of its own (2 MB by default), and a run holds one
        # connection per worker thread: at 2 MB each they filled up as the file grew, so a
        # 500,000-row run held ~15 MB more than a 10,000-row one. The OS caches the file too.
        cursor.execute(f"PRAGMA cache_size={SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE), so two processes never
        # both read and then both try to upgrade: the busy timeout then simply queues them.
        if conn.get_execution_options().get("sheetbatch_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
