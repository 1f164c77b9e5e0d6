"""A read whose PostgreSQL backend died after the pool handed out its connection is asked
again on a fresh connection, once: a running row's boundary reads survive a killed backend."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from progress import open_store
from progress.reads import once_more_if_dropped


@pytest.mark.postgres
def test_a_read_on_a_connection_whose_backend_was_killed_is_asked_again(pg_db: str) -> None:
    store = open_store(pg_db)
    try:
        calls: list[int] = []

        def read() -> int:
            with store.engine.connect() as conn:
                calls.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                if len(calls) == 1:  # the backend dies under the read, as pg_terminate_backend does
                    conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
                return int(conn.execute(text("SELECT 42")).scalar_one())

        assert once_more_if_dropped(read) == 42
        assert len(calls) == 2 and calls[0] != calls[1]  # on a fresh backend
    finally:
        store.close()


@pytest.mark.postgres
def test_a_read_that_fails_for_another_reason_is_not_repeated(pg_db: str) -> None:
    store = open_store(pg_db)
    try:
        calls: list[int] = []

        def read() -> None:
            calls.append(1)
            with store.engine.connect() as conn:
                conn.execute(text("SELECT * FROM no_such_table"))

        with pytest.raises(Exception, match="no_such_table"):
            once_more_if_dropped(read)
        assert calls == [1]
    finally:
        store.close()


@pytest.mark.postgres
def test_two_dead_connections_in_a_row_are_an_error(pg_db: str) -> None:
    store = open_store(pg_db)
    try:

        def read() -> None:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
                conn.execute(text("SELECT 1"))

        with pytest.raises(OperationalError):
            once_more_if_dropped(read)
    finally:
        store.close()
