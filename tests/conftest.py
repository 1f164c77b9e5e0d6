"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from progress import Store, open_store
from tests.support.databases import postgres_schema_url, sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        yield from postgres_schema_url()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """A fresh SQLite database URL."""
    return sqlite_url(tmp_path)


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A fresh PostgreSQL schema URL (skips, or fails under CI, without PostgreSQL)."""
    yield from postgres_schema_url()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An open store on each database."""
    s = open_store(db_url, poll_interval=0.05)
    try:
        yield s
    finally:
        s.close()
