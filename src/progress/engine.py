"""Opening a database for the store: SQLite (default) or PostgreSQL, by URL."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from progress.errors import StoreUnavailable

DEFAULT_URL = "sqlite:///.sheetbatch/progress.db"


def normalize_url(url: str) -> str:
    """Accept a bare path, `sqlite:///…`, `postgresql://…` or `postgres://…`."""
    if "://" not in url:
        return f"sqlite:///{url}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_store_engine(url: str) -> Engine:
    """An engine configured for the store: WAL and busy_timeout on SQLite, a pool on PostgreSQL."""
    from sqlalchemy import create_engine

    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(f"--db: not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise StoreUnavailable(
                "--db: an in-memory SQLite database cannot be shared; use a file"
            )
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if os.environ.get("SHEETBATCH_SQLITE_NULLPOOL") else None,
            pool_size=40,
            max_overflow=40,
        )
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        return create_engine(
            url, pool_size=10, max_overflow=40, pool_pre_ping=True, pool_recycle=1800
        )
    raise StoreUnavailable(f"--db: unsupported database {backend!r}; use sqlite or postgresql")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's begin event decide how a transaction starts (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE), so two processes never
        # both read and then both try to upgrade: the busy timeout then simply queues them.
        if conn.get_execution_options().get("sheetbatch_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
