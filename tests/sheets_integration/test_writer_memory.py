"""What the sheet writer holds while it flushes a big batch: a bounded piece of rows, never
every job id that moved since its cursor (a flush after 500,000 rows moved, or the count of
rows a failed final flush leaves unwritten)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from progress import Store
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.writer import SheetWriter
from tests.support.cli import read_csv, write_csv
from tests.support.factory import local_store, make_batch

T = TypeVar("T")
ROWS = 12_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with local_store(tmp_path) as s:
        yield s


@pytest.fixture
def writer(store: Store, tmp_path: Path) -> SheetWriter:
    """The writer of a 12,000-row batch whose ids are in the file, nothing flushed yet:
    every row moved since its cursor."""
    batch_id, job_ids = make_batch(store, ROWS)
    rows = [[f"c{i}", "", job_id, "", ""] for i, job_id in enumerate(job_ids)]
    header = ["Company", "Status", "Job ID", "Updated", "Error"]
    path = write_csv(tmp_path / "big.csv", header, rows)
    writer = SheetWriter(store, CsvSheet(path), batch_id, output_columns={})
    writer.write_rows = 300
    return writer


def peak_of(call: Callable[[], T]) -> tuple[T, int]:
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_counting_the_unwritten_rows_holds_none_of_their_ids(writer: SheetWriter) -> None:
    pending, peak = peak_of(writer.pending_rows)
    assert pending == ROWS
    assert peak < 300_000, f"counting {ROWS} pending rows peaked at {peak / 1e6:.2f} MB"


def test_a_flush_of_every_row_holds_a_piece_not_every_moved_job_id(
    writer: SheetWriter, tmp_path: Path
) -> None:
    report, peak = peak_of(writer.flush)
    assert report.rows == ROWS
    assert writer.pending_rows() == 0
    assert {row["Status"] for row in read_csv(tmp_path / "big.csv")} == {"queued"}
    # The old writer held every moved job id at once: 2.2 MB here; a 300-row piece and a
    # page of the log are 1.4 MB.
    assert peak < 1_800_000, f"a flush of {ROWS} rows peaked at {peak / 1e6:.2f} MB"
