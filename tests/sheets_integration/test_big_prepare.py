"""Preparing a sheet bigger than the store's insert chunk: every row becomes one job, whose id
lands in its own row and whose inputs are that row's; preparing again (the process died
before running) resumes those jobs instead of adding any; a row added meanwhile is the one
new job."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from progress import Store
from sheets_integration.columns import RunColumns
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.selection import Skipped, select_rows
from tests.support.cli import read_csv, write_csv
from tests.support.factory import local_store, processor

ROWS = 2_700  # past the store's insert chunk (2,000 rows)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with local_store(tmp_path) as s:
        yield s


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "leads.csv",
        ["Company", "Website"],
        [[f"Company {i}", f"company{i}.test"] for i in range(ROWS)],
    )


def test_every_row_of_a_big_sheet_is_prepared_once_with_its_own_inputs(
    store: Store, sheet: Path
) -> None:
    batch = processor(store, CsvSheet(sheet))
    batch_id = batch.prepare()
    assert batch.selection.queued == ROWS
    rows = read_csv(sheet)
    ids = [row["Job ID"] for row in rows]
    assert len(set(ids)) == ROWS and all(ids)
    assert store.job_ids(batch_id) == ids
    jobs = {job["job_id"]: job for job in store.jobs(batch_id=batch_id)}
    for number, row in enumerate(rows, start=2):
        job = jobs[row["Job ID"]]
        assert job["row"] == number
        assert job["label"] == row["Company"]
        assert job["inputs"] == {"Company": row["Company"], "Website": row["Website"]}


def test_preparing_a_big_sheet_again_resumes_its_jobs_and_adds_only_new_rows(
    store: Store, sheet: Path
) -> None:
    batch_id = processor(store, CsvSheet(sheet)).prepare()
    ids = [row["Job ID"] for row in read_csv(sheet)]
    rows = read_csv(sheet)
    header = list(rows[0])
    added = {**dict.fromkeys(header, ""), "Company": "Late Co", "Website": "late.test"}
    write_csv(sheet, header, [list(row.values()) for row in [*rows, added]])
    again = processor(store, CsvSheet(sheet))
    assert again.prepare() == batch_id
    assert again.selection.resumed == ROWS and again.selection.queued == 1
    now = [row["Job ID"] for row in read_csv(sheet)]
    assert now[:ROWS] == ids
    assert store.job_ids(batch_id) == now
    (late,) = store.jobs(job_ids=[now[-1]])
    assert late["inputs"] == {"Company": "Late Co", "Website": "late.test"}


def test_the_rows_selected_in_a_big_sheet_are_held_in_4_bytes_each(tmp_path: Path) -> None:
    rows = 40_000
    path = write_csv(
        tmp_path / "big.csv", ["Company", "Website"], [[f"c{i}", ""] for i in range(rows)]
    )
    table = CsvSheet(path).read()
    skipped = Skipped()
    tracemalloc.start()
    try:
        selected, _ = select_rows(
            table, {}, RunColumns.resolve([]), {}, skipped, retry_failed=False, force=False
        )
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert list(selected) == list(range(rows))
    # A list of 40,000 ints held 1.4 MB.
    assert held < 400_000, f"the selected rows held {held / 1e6:.2f} MB"
