"""The sheet writer's final flush: retried after each of its delays while the sheet refuses,
every failure logged, and written as soon as the sheet takes it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from progress import Store
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.writer import SheetWriter
from tests.support.cli import read_csv, write_csv
from tests.support.factory import local_store, processor


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with local_store(tmp_path) as s:
        yield s


def finished_batch(store: Store, path: Path) -> SheetWriter:
    """A batch of two rows run to the end, and its writer (nothing written yet)."""
    batch = processor(store, CsvSheet(path))
    batch_id = batch.prepare()
    batch.make_pool().run_batch(batch_id)
    return batch.make_writer(batch_id)


def test_the_final_flush_lands_once_the_sheet_is_free_again(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["A", "a.test"], ["B", "b.test"]])
    writer = finished_batch(store, path)
    lock = tmp_path / ".~lock.c.csv#"  # open in LibreOffice ...
    lock.write_text("someone,host,1;", encoding="utf-8")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            lock.unlink()  # ... and closed during the second wait

    writer.sleep = sleep
    with caplog.at_level(logging.WARNING, logger="sheets_integration.writer"):
        outcome = writer.stop(final_flush=True)
    assert outcome.written and outcome.unwritten == 0
    assert slept == [0.5, 1.0]
    assert [r["Status"] for r in read_csv(path)] == ["completed", "completed"]
    failures = [r.getMessage() for r in caplog.records if "final sheet flush" in r.getMessage()]
    assert len(failures) == 2 and all("locked by another program" in m for m in failures)


def test_every_failed_attempt_is_logged_and_the_last_error_is_reported(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["A", "a.test"]])
    writer = finished_batch(store, path)
    (tmp_path / ".~lock.c.csv#").write_text("someone,host,1;", encoding="utf-8")
    slept: list[float] = []
    writer.sleep = slept.append
    writer.retry_delays = (3.0, 7.0)
    with caplog.at_level(logging.WARNING, logger="sheets_integration.writer"):
        outcome = writer.stop(final_flush=True)
    assert not outcome.written and outcome.unwritten == 1
    assert "locked by another program" in outcome.error
    assert slept == [3.0, 7.0]  # the delays given, in order, and none after the last attempt
    messages = [r.getMessage() for r in caplog.records]
    assert sum("final sheet flush to" in m for m in messages) == 3
    assert any("could not write the final statuses of 1 row" in m for m in messages)


def test_no_delays_means_one_attempt(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["A", "a.test"]])
    writer = finished_batch(store, path)
    (tmp_path / ".~lock.c.csv#").write_text("someone,host,1;", encoding="utf-8")
    slept: list[float] = []
    writer.sleep = slept.append
    writer.retry_delays = ()
    outcome = writer.stop(final_flush=True)
    assert not outcome.written and slept == []


def test_a_sheet_that_cannot_take_the_write_until_someone_acts_is_not_asked_again(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["A", "a.test"]])
    writer = finished_batch(store, path)
    path.unlink()  # the operator deleted (or moved) the file before the final flush
    slept: list[float] = []
    writer.sleep = slept.append
    outcome = writer.stop(final_flush=True)
    assert not outcome.written and outcome.unwritten == 1
    assert "not found" in outcome.error
    assert slept == []  # one attempt: waiting would not bring the file back
