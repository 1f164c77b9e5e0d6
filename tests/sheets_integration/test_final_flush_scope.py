"""What the final flush of a local file writes: only the rows that changed since the last
flush when nobody else touched the file, every row of the batch when someone did (an old
copy saved over our statuses is put back), and the pause after a slow flush."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from progress import Store
from sheets_integration.batch import BatchProcessor
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.flush_pacing import FlushPacing, fixed_flush_cost, flush_pause
from sheets_integration.writer import FlushReport, SheetWriter
from tests.support.cli import read_csv, write_csv
from tests.support.factory import local_store, processor

HEADER = ["Company", "Website"]
ROWS = [["Acme", "acme.test"], ["Beta", "beta.test"], ["Gamma", "gamma.test"]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with local_store(tmp_path) as s:
        yield s


def flushed_batch(
    store: Store, path: Path, reports: list[FlushReport]
) -> tuple[BatchProcessor, SheetWriter]:
    """A batch of three rows run to the end and flushed once by its writer."""
    batch = processor(store, CsvSheet(path))
    batch.on_flush = reports.append
    batch_id = batch.prepare()
    batch.make_pool().run_batch(batch_id)
    writer = batch.make_writer(batch_id)
    assert writer.flush().rows == 3
    return batch, writer


def stale_save(path: Path, company: str, status: str) -> None:
    """The operator saves a copy in which `company`'s row shows an old status."""
    rows = read_csv(path)
    for row in rows:
        if row["Company"] == company:
            row["Status"] = status
    write_csv(path, list(rows[0]), [list(row.values()) for row in rows])


def job_of(path: Path, company: str) -> str:
    return next(row["Job ID"] for row in read_csv(path) if row["Company"] == company)


def test_an_untouched_file_gets_only_the_rows_changed_since_the_last_flush(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, ROWS)
    reports: list[FlushReport] = []
    _, writer = flushed_batch(store, path, reports)
    before = path.read_bytes()
    store.note(job_of(path, "Beta"), "checked")  # Beta's job moved after the last flush
    outcome = writer.stop(final_flush=True)
    assert outcome.written
    assert [r.rows for r in reports] == [3, 1]  # the final flush wrote Beta's row alone
    assert path.read_bytes() == before  # ... whose cells already held the values


def test_a_file_nobody_touched_after_the_last_flush_gets_no_final_write(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, ROWS)
    reports: list[FlushReport] = []
    _, writer = flushed_batch(store, path, reports)
    assert writer.stop(final_flush=True).written
    assert [r.rows for r in reports] == [3]


def test_an_old_copy_saved_between_two_flushes_is_put_back_at_the_end(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, ROWS)
    reports: list[FlushReport] = []
    _, writer = flushed_batch(store, path, reports)
    stale_save(path, "Gamma", "processing (2/4 crawl)")
    store.note(job_of(path, "Acme"), "checked")
    assert writer.flush().rows == 1  # a live flush: Acme's row only; Gamma's stays stale
    assert [r["Status"] for r in read_csv(path)][2] == "processing (2/4 crawl)"
    assert writer.stop(final_flush=True).written
    assert [r["Status"] for r in read_csv(path)] == ["completed"] * 3
    assert reports[-1].rows == 3  # the final flush reconciled the whole batch


def test_a_batch_resumed_by_another_sheet_object_reconciles_every_row(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, ROWS)
    reports: list[FlushReport] = []
    batch, writer = flushed_batch(store, path, reports)
    writer.stop(final_flush=False)
    stale_save(path, "Beta", "queued")
    # Another process (its own sheet object, which never wrote the file) finishes the batch.
    later = processor(store, CsvSheet(path))
    later.owner = batch.owner
    later.on_flush = reports.append
    assert later.make_writer(writer.batch_id).stop(final_flush=True).written
    assert [r["Status"] for r in read_csv(path)] == ["completed"] * 3
    assert reports[-1].rows == 3


@pytest.mark.parametrize(
    ("interval", "seconds", "pause"),
    [(2.0, 0.05, 2.0), (2.0, 0.5, 4.5), (2.0, 5.0, 45.0), (0.05, 0.0, 0.05)],
)
def test_the_pause_after_a_flush_keeps_flushing_under_a_tenth_of_the_run(
    interval: float, seconds: float, pause: float
) -> None:
    assert flush_pause(interval, seconds) == pytest.approx(pause)
    assert seconds / (seconds + flush_pause(interval, seconds)) <= 0.1 + 1e-9


def test_only_the_quickest_recent_flush_counts_as_the_cost_worth_spreading() -> None:
    # Big flushes after long pauses must not lengthen the pause again (a runaway).
    assert fixed_flush_cost([0.6, 1.5, 3.2, 6.6]) == 0.6
    assert fixed_flush_cost([]) == 0.0


def test_a_writer_paces_by_its_eight_most_recent_flushes() -> None:
    pacing = FlushPacing(interval=2.0)
    assert pacing.pause() == 2.0  # nothing flushed yet: the interval
    assert pacing.flushed(1.0) == pytest.approx(9.0)
    for _ in range(8):
        pacing.flushed(3.0)
    # The quick flush has left the window: the slower ones set the pause now.
    assert pacing.pause() == pytest.approx(27.0)


def test_the_final_reconciliation_pages_through_every_row_of_the_batch(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, ROWS)
    reports: list[FlushReport] = []
    _, writer = flushed_batch(store, path, reports)
    writer.write_rows = 1  # every row its own piece, every page of the store one row
    for company in ("Acme", "Beta", "Gamma"):
        stale_save(path, company, "queued")
    store.note(job_of(path, "Beta"), "checked")  # one changed row, two unchanged ones
    assert writer.stop(final_flush=True).written
    assert [r["Status"] for r in read_csv(path)] == ["completed"] * 3
    assert reports[-1].rows == 3


def test_a_full_flush_holds_the_cells_of_a_piece_not_every_job_snapshot(
    store: Store, tmp_path: Path
) -> None:
    # 3,000 finished rows, and a stale save so the final flush reconciles every one of
    # them: the writer holds each row's cells (a few hundred bytes), never the jobs'
    # whole snapshots (inputs, results: several times that), for the rows of a piece.
    rows = [[f"Company {i}", f"c{i}.test"] for i in range(3000)]
    path = write_csv(tmp_path / "big.csv", HEADER, rows)
    batch = processor(store, CsvSheet(path), concurrency=8)
    batch_id = batch.prepare()
    batch.make_pool().run_batch(batch_id)
    writer = batch.make_writer(batch_id)
    assert writer.flush().rows == 3000
    stale_save(path, "Company 7", "queued")
    tracemalloc.start()
    try:
        report = writer.flush(full=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.rows == 3000
    assert next(r for r in read_csv(path) if r["Company"] == "Company 7")["Status"] == "completed"
    assert peak < 8_000_000, f"a full flush of 3,000 rows peaked at {peak / 1e6:.1f} MB"
