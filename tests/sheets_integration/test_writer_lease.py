"""One process writes a batch's sheet at a time: the writer lease, and its fenced cursor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.registry import load_pipeline
from progress import Store, open_store
from progress.errors import NotLeader
from sheets_integration.batch import BatchProcessor, RunOptions
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.errors import WriterBusy
from sheets_integration.writer import SheetWriter, cursor_name, writer_lease
from tests.support.cli import read_csv, write_csv
from tests.support.schedules import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stores(db_url: str, clock: Clock) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database: the two processes."""
    first = open_store(db_url, clock=clock, poll_interval=0.02)
    second = open_store(db_url, clock=clock, poll_interval=0.02)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def _writers(stores: tuple[Store, Store], path: Path) -> tuple[SheetWriter, SheetWriter]:
    batch = BatchProcessor(
        store=stores[0],
        sheet=CsvSheet(path),
        pipeline=load_pipeline("noop"),
        options=RunOptions(concurrency=2, lease_seconds=10),
        owner="host-a:1:a",
    )
    batch_id = batch.prepare()
    batch.make_pool().run_batch(batch_id)
    one = batch.make_writer(batch_id)
    other = replace(one, store=stores[1], sheet=CsvSheet(path), owner="host-b:2:b")
    return one, other


def test_only_the_lease_holder_writes_and_the_other_takes_over_when_it_stops(
    stores: tuple[Store, Store], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["A", "a.test"], ["B", "b.test"]])
    one, other = _writers(stores, path)
    assert one.flush().rows == 2
    before = path.read_bytes()
    with pytest.raises(WriterBusy, match="host-a:1:a"):
        other.flush(full=True)
    assert path.read_bytes() == before
    one.stop(final_flush=False)  # releases the lease
    assert other.flush(full=True).rows == 2
    assert [r["Status"] for r in read_csv(path)] == ["completed", "completed"]


def test_a_writer_whose_lease_moved_on_cannot_move_the_cursor(
    stores: tuple[Store, Store], tmp_path: Path, clock: Clock
) -> None:
    path = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["A", "a.test"]])
    one, other = _writers(stores, path)
    guard = one._lead()
    assert guard is not None
    clock.now += 11  # the holder paused past its lease; the other process takes over
    assert other.flush(full=True).rows == 1
    with pytest.raises(NotLeader):
        stores[0].set_cursor(cursor_name(one.batch_id), 10**9, guard=guard)
    assert stores[0].get_cursor(cursor_name(one.batch_id)) < 10**9
    lease = stores[0].lease(writer_lease(one.batch_id))
    assert lease is not None and lease.owner == "host-b:2:b"
