"""Database fixtures: SQLite files and isolated PostgreSQL schemas.

PostgreSQL tests skip with a reason when the server is absent on a laptop; under CI=true a
missing server is a failure, never a skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import psycopg

PG_URL = os.environ.get("SHEETBATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def need_service(name: str, error: str) -> None:
    """Skip (or, under CI, fail) a test whose service is missing."""
    message = f"{name} is not available ({error}); start it, or see scripts/ensure-services.sh"
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def _libpq_url() -> str:
    """PG_URL as psycopg itself takes it (without SQLAlchemy's driver name)."""
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def admin_connection() -> psycopg.Connection[Any]:
    """An autocommit connection to the test server (skips, or fails under CI, without it)."""
    import psycopg

    try:
        return psycopg.connect(_libpq_url(), autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        need_service("PostgreSQL at 127.0.0.1:5432", str(exc).strip().splitlines()[0])
        raise AssertionError("unreachable") from exc


def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards."""
    admin = admin_connection()
    schema = "t_" + secrets.token_hex(6)
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in PG_URL else "?"
        try:
            yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'progress.db'}"


def postgres_role_url(connection_limit: int) -> Iterator[tuple[str, str]]:
    """(URL, role): a new role allowed `connection_limit` sessions at once, logging in with a
    search_path on a fresh schema it owns; role and schema dropped afterwards.

    The way to run PostgreSQL out of slots without starving anyone else of the shared server:
    its refusal ("too many connections for role") is the one `max_connections` gives.
    """
    base = _libpq_url()
    admin = admin_connection()
    role = "sb_role_" + secrets.token_hex(5)
    with admin:
        admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {int(connection_limit)}")
        admin.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        where = base.split("@", 1)[1]  # host:port/database[?query]
        sep = "&" if "?" in where else "?"
        try:
            yield f"postgresql+psycopg://{role}@{where}{sep}options=-csearch_path%3D{role}", role
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            admin.execute(f"DROP SCHEMA {role} CASCADE")
            admin.execute(f"DROP ROLE {role}")
