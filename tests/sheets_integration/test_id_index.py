"""The ids of one job-id assignment as a compact set: the same answers as a set of str, at
8 bytes an id, so assigning ids to a 500,000-row sheet holds no object per row."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from progress.batch_writes import new_job_id
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.id_index import IdIndex
from sheets_integration.planned import PlannedJobs
from sheets_integration.safety import validate_job_ids
from tests.support.cli import read_csv, write_csv


def test_the_index_answers_as_a_set_of_the_ids_would() -> None:
    ids = [new_job_id() for _ in range(70_000)] + ["job-1", "J-00000000000000AB"]
    index = IdIndex(ids)
    assert index.duplicate is None and len(index) == len(ids)
    assert all(job_id in index for job_id in ids[::97] + ids[-3:])
    absent = [new_job_id() for _ in range(200)] + ["job-2", "j-00000000000000ab", ""]
    assert not any(job_id in index for job_id in absent)


@pytest.mark.parametrize("again", [0, 69_999, -1])
def test_an_id_given_twice_is_named(again: int) -> None:
    ids = [new_job_id() for _ in range(70_000)] + ["job-1"]
    with pytest.raises(ValueError, match=f"job id '{ids[again]}' assigned to two rows"):
        validate_job_ids({row: job_id for row, job_id in enumerate([*ids, ids[again]])})


def test_assigning_the_ids_of_a_big_sheet_holds_no_object_per_row(tmp_path: Path) -> None:
    rows = 30_000
    path = write_csv(
        tmp_path / "big.csv",
        ["Company", "Job ID"],
        [[f"Company {i}", ""] for i in range(rows)],
    )
    sheet = CsvSheet(path)
    planned = PlannedJobs(sheet.read(), range(rows), {"Company": "Company"})
    tracemalloc.start()
    try:
        refused = sheet.assign_job_ids(planned.by_row(), {}, job_column="Job ID")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused == set()
    assert [row["Job ID"] for row in read_csv(path)] == list(planned.ids())
    # Sets of the 30,000 ids as str (the check, then the lookup) peaked at 4.3 MB.
    assert peak < 2_500_000, f"assigning {rows} ids peaked at {peak / 1e6:.1f} MB"
