"""A flush that outlasts the writer lease: the writer renews its lease before each piece of a
big flush and before the fenced cursor move, so its cursor lands (and later flushes do not
redo every row); a writer that took over meanwhile stops it before anything more is written."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path

import pytest

from progress import Store
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.errors import WriterBusy
from sheets_integration.sheet import JOB_ID_COLUMN, CellValue, WriteResult
from sheets_integration.writer import SheetWriter, cursor_name, writer_lease
from tests.support.cli import read_csv, write_csv
from tests.support.factory import local_store, processor

LEASE = 30.0
ROWS = 5


class Clock:
    """The store's time: it moves only when a piece of the flush is written."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class SlowCsv(CsvSheet):
    """A CSV file whose every write takes longer than the writer lease (a big file on a
    loaded machine), as the store's clock sees it; `during` runs after each write."""

    def __init__(self, path: Path, clock: Clock) -> None:
        super().__init__(path)
        self.clock = clock
        self.writes = 0
        self.during: Callable[[], None] = lambda: None

    def write_by_job_id(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        *,
        job_column: str = JOB_ID_COLUMN,
        fill_only: Collection[str] = (),
    ) -> WriteResult:
        result = super().write_by_job_id(updates, job_column=job_column, fill_only=fill_only)
        self.writes += 1
        self.clock.now += LEASE + 5
        self.during()
        return result


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with local_store(tmp_path, clock=clock) as s:
        yield s


def finished_batch(store: Store, sheet: SlowCsv) -> SheetWriter:
    """A batch of ROWS rows run to the end, nothing flushed yet; its writer, writing two rows
    per piece."""
    write_csv(sheet.path, ["Company", "Website"], [[f"c{i}", f"c{i}.test"] for i in range(ROWS)])
    batch = processor(store, sheet, lease_seconds=LEASE)
    batch_id = batch.prepare()
    batch.make_pool().run_batch(batch_id)
    writer = batch.make_writer(batch_id)
    writer.write_rows = 2
    return writer


def test_a_flush_longer_than_the_lease_moves_its_cursor(
    tmp_path: Path, store: Store, clock: Clock
) -> None:
    sheet = SlowCsv(tmp_path / "leads.csv", clock)
    writer = finished_batch(store, sheet)
    report = writer.flush()
    assert sheet.writes == 3  # three pieces, each outlasting the lease
    assert report.rows == ROWS
    assert store.get_cursor(cursor_name(writer.batch_id)) == report.cursor
    assert [row["Status"] for row in read_csv(sheet.path)] == ["completed"] * ROWS
    # The cursor landed: the next flush has nothing to redo.
    assert writer.flush().rows == 0
    assert sheet.writes == 3


def test_a_writer_that_took_over_mid_flush_stops_the_old_one(
    tmp_path: Path, store: Store, clock: Clock
) -> None:
    sheet = SlowCsv(tmp_path / "leads.csv", clock)
    writer = finished_batch(store, sheet)
    name = writer_lease(writer.batch_id)

    def take_over() -> None:
        # The old writer's lease lapsed while it wrote: another process takes the sheet.
        sheet.during = lambda: None
        assert store.acquire_lease(name, "other-host:1:writer", LEASE) is not None

    sheet.during = take_over
    with pytest.raises(WriterBusy):
        writer.flush()
    assert sheet.writes == 1  # no piece written after the takeover
    assert store.get_cursor(cursor_name(writer.batch_id)) == 0
