"""A read whose PostgreSQL backend died after the pool handed out its connection is asked
again on a fresh connection, once: a running row's boundary reads survive a killed backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from progress import Store, open_store
from progress.reads import once_more_if_dropped

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_db: str) -> Iterator[Store]:
    store = open_store(pg_db)
    try:
        yield store
    finally:
        store.close()


def test_a_read_on_a_connection_whose_backend_was_killed_is_asked_again(pg_store: Store) -> None:
    calls: list[int] = []

    def fetch(conn: Connection) -> int:
        calls.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        if len(calls) == 1:  # the backend dies under the read, as pg_terminate_backend does
            conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return int(conn.execute(text("SELECT 42")).scalar_one())

    assert once_more_if_dropped(pg_store.engine, fetch) == 42
    assert len(calls) == 2 and calls[0] != calls[1]  # on a fresh backend


def test_a_read_that_fails_for_another_reason_is_not_repeated(pg_store: Store) -> None:
    calls: list[int] = []

    def fetch(conn: Connection) -> None:
        calls.append(1)
        conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(Exception, match="no_such_table"):
        once_more_if_dropped(pg_store.engine, fetch)
    assert calls == [1]


def test_two_dead_connections_in_a_row_are_an_error(pg_store: Store) -> None:
    def fetch(conn: Connection) -> None:
        conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        conn.execute(text("SELECT 1"))

    with pytest.raises(OperationalError):
        once_more_if_dropped(pg_store.engine, fetch)
