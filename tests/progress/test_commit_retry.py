"""The group committer's answer to a locked SQLite database: two more attempts, 50 then 100 ms
apart, then StoreUnavailable; any other database error is StoreUnavailable at once.

The lock is real: another connection holds SQLite's write lock, and our engine has no busy
timeout, so every write meets "database is locked" until the holder lets go."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from progress import open_store
from progress.commit import GroupCommitter, Tx
from progress.errors import StoreUnavailable
from progress.status import EventType


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    path = tmp_path / "progress.db"
    open_store(f"sqlite:///{path}").close()  # the schema, in WAL mode
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        yield path, engine
    finally:
        engine.dispose()


def append(tx: Tx) -> int:
    return tx.emit(EventType.BATCH_CREATED, "b-1", None, {})


def test_a_write_meeting_a_locked_database_is_retried_and_lands(
    db: tuple[Path, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    path, engine = db
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            holder.execute("ROLLBACK")  # ... and is done during our second wait

    committed: list[int] = []
    committer = GroupCommitter(engine.begin, time.time, committed.append, sleep=sleep)
    with caplog.at_level(logging.WARNING, logger="progress.commit"):
        event_id = committer.run(append)
    holder.close()
    assert event_id == 1 and committed == [1]
    assert slept == [pytest.approx(0.05), pytest.approx(0.10)]
    busy = [r.getMessage() for r in caplog.records if "progress store busy" in r.getMessage()]
    assert len(busy) == 2 and all("locked" in m for m in busy)


def test_a_lock_that_outlasts_three_attempts_is_store_unavailable(
    db: tuple[Path, Engine],
) -> None:
    path, engine = db
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    slept: list[float] = []
    committer = GroupCommitter(engine.begin, time.time, lambda head: None, sleep=slept.append)
    try:
        with pytest.raises(StoreUnavailable, match="database is locked"):
            committer.run(append)
    finally:
        holder.close()
    assert slept == [pytest.approx(0.05), pytest.approx(0.10)]


def test_other_database_errors_are_not_retried(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables at all
    slept: list[float] = []
    committer = GroupCommitter(engine.begin, time.time, lambda head: None, sleep=slept.append)
    try:
        with pytest.raises(StoreUnavailable, match="no such table"):
            committer.run(append)
    finally:
        engine.dispose()
    assert slept == []
