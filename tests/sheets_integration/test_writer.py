"""The sheet writer on a real CSV sheet and a real store: its cursor moves only after a write
landed, a failed flush loses nothing, and rows are found by Job ID however the operator
sorted them meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from progress import Store
from sheets_integration.batch import BatchProcessor
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.errors import SheetLocked
from sheets_integration.writer import SheetWriter, cursor_name
from tests.support.cli import read_csv, write_csv
from tests.support.factory import local_store, processor

ROWS = [["Acme", "acme.test"], ["Beta", "beta.test"], ["Corp", "corp.test"]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with local_store(tmp_path) as s:
        yield s


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "c.csv", ["Company", "Website"], ROWS)


def prepared(store: Store, path: Path) -> tuple[BatchProcessor, str, SheetWriter]:
    batch = processor(store, CsvSheet(path))
    batch_id = batch.prepare()
    return batch, batch_id, batch.make_writer(batch_id)


def lock(path: Path) -> Path:
    """The file as a spreadsheet program holding it open leaves it: writes are refused."""
    marker = path.with_name(f".~lock.{path.name}#")
    marker.write_text("operator,host,1;", encoding="utf-8")
    return marker


def test_the_cursor_moves_only_after_a_write_landed(store: Store, sheet: Path) -> None:
    batch, batch_id, writer = prepared(store, sheet)
    batch.make_pool().run_batch(batch_id)
    name = cursor_name(batch_id)
    marker = lock(sheet)
    with pytest.raises(SheetLocked):
        writer.flush()
    assert store.get_cursor(name) == 0
    assert writer.pending_rows() == 3
    assert [r["Status"] for r in read_csv(sheet)] == [""] * 3  # only Job IDs so far
    marker.unlink()
    report = writer.flush()
    assert report.rows == 3 and report.cursor == store.last_event_id()
    assert store.get_cursor(name) == report.cursor and writer.pending_rows() == 0
    assert [r["Status"] for r in read_csv(sheet)] == ["completed"] * 3


def test_a_failed_flush_loses_nothing_that_happened_meanwhile(store: Store, sheet: Path) -> None:
    _batch, batch_id, writer = prepared(store, sheet)
    first = store.claim_next(batch_id, "w", 30)
    assert first is not None
    store.phase_started(first["job_id"], 1, 4, "parse", owner="w")
    writer.flush()
    assert read_csv(sheet)[0]["Status"] == "processing (1/4 parse)"
    marker = lock(sheet)
    # While the sheet refuses, that job fails and another one starts.
    store.fail_job(first["job_id"], phase="parse", reason="boom", owner="w")
    second = store.claim_next(batch_id, "w", 30)
    assert second is not None
    with pytest.raises(SheetLocked):
        writer.flush()
    marker.unlink()
    writer.flush()
    rows = read_csv(sheet)
    assert rows[0]["Status"] == "failed: parse: boom" and rows[0]["Error"] == "parse: boom"
    assert rows[1]["Status"] == "processing" and rows[2]["Status"] == "queued"


def test_rows_sorted_by_the_operator_get_their_own_results(store: Store, sheet: Path) -> None:
    batch, batch_id, writer = prepared(store, sheet)
    batch.make_pool().run_batch(batch_id)
    # The operator sorts the sheet Z-A between the read and the write.
    rows = read_csv(sheet)
    header = list(rows[0])
    reordered = sorted(rows, key=lambda r: r["Company"], reverse=True)
    write_csv(sheet, header, [[r[c] for c in header] for r in reordered])
    assert writer.flush().rows == 3
    after = read_csv(sheet)
    assert [r["Company"] for r in after] == ["Corp", "Beta", "Acme"]
    assert all(r["Name"] == r["Company"] and r["Status"] == "completed" for r in after)
    job_ids = {r["Company"]: r["Job ID"] for r in after}
    assert {store.job(job_ids[c])["inputs"]["Company"] for c in job_ids} == set(job_ids)
    assert all(store.job(j)["inputs"]["Company"] == c for c, j in job_ids.items())
