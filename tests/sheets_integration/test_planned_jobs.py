"""The jobs planned for a big sheet's rows: made on demand, their ids held compactly."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.id_assignment import assign_ids
from sheets_integration.planned import PlannedJobs
from sheets_integration.sheet import Table
from tests.support.cli import read_csv, write_csv


def table_of(n: int) -> Table:
    return Table(header=["Company", "Website"], rows=[[f"c{i}", f"c{i}.test"] for i in range(n)])


def test_each_row_keeps_one_id_and_its_inputs_whichever_way_it_is_looked_up() -> None:
    planned = PlannedJobs(table_of(10), [7, 2, 5], {"Company": "Company", "Website": "Website"})
    by_row = planned.by_row()
    jobs = list(planned)
    assert [job.row for job in jobs] == [2 + 2, 5 + 2, 7 + 2]  # in row order
    assert [job.inputs["Company"] for job in jobs] == ["c2", "c5", "c7"]
    assert dict(by_row) == {2: jobs[0].job_id, 5: jobs[1].job_id, 7: jobs[2].job_id}
    assert list(planned.ids()) == [job.job_id for job in jobs] == [job.job_id for job in planned]
    assert len(set(planned.ids())) == 3
    assert 5 in by_row and 3 not in by_row and "5" not in by_row
    with pytest.raises(KeyError):
        by_row[3]
    with pytest.raises(KeyError):
        by_row[99]


def test_the_row_to_id_view_of_a_big_plan_holds_no_object_per_row() -> None:
    n = 100_000
    planned = PlannedJobs(table_of(n), range(n), {"Company": "Company"})
    tracemalloc.start()
    try:
        by_row = planned.by_row()
        assert sum(1 for row in by_row if row % 1000 == 0) == 100
        assert by_row[n - 1] == planned.ids()[n - 1]
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A dict of row -> id string would hold ~10 MB here.
    assert current < 100_000, f"the view holds {current} bytes"


def test_ids_whose_rows_moved_land_on_them_and_ids_whose_rows_vanished_are_told(
    tmp_path: Path,
) -> None:
    rows = [["Acme", "acme.test"], ["Beta", "beta.test"], ["Gamma", "gamma.test"]]
    path = write_csv(tmp_path / "c.csv", ["Company", "Website", "Job ID"], [[*r, ""] for r in rows])
    sheet = CsvSheet(path)
    table = sheet.read()
    planned = PlannedJobs(table, [0, 1, 2], {"Company": "Company"})
    # Meanwhile the operator inserts a row at the top and deletes Beta.
    write_csv(
        path,
        ["Company", "Website", "Job ID"],
        [["New", "new.test", ""], ["Acme", "acme.test", ""], ["Gamma", "gamma.test", ""]],
    )
    lost, moved = assign_ids(sheet, table, planned.by_row(), ("Company", "Website", "Job ID"))
    ids = dict(zip(["Acme", "Beta", "Gamma"], planned.ids(), strict=True))
    assert lost == {ids["Beta"]}
    assert moved == 0
    assert {r["Company"]: r["Job ID"] for r in read_csv(path)} == {
        "New": "",
        "Acme": ids["Acme"],
        "Gamma": ids["Gamma"],
    }
