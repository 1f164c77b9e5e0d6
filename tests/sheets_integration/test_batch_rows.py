"""The batch core on real sheets (CSV files, .xlsx workbooks made with openpyxl) and a real
SQLite store: merged cells, numbers, hyperlinked inputs, copied rows, and operator edits
the final flush must keep."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from progress import Store
from progress.batch_writes import NewJob
from sheets_integration.batch import BatchProcessor, NothingToDo
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.errors import MergedTarget
from sheets_integration.row_cells import row_cells
from sheets_integration.sheet import Sheet
from sheets_integration.xlsx_sheet import XlsxSheet
from tests.support.cli import read_csv, write_csv
from tests.support.factory import local_store, processor


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with local_store(tmp_path) as s:
        yield s


def run_batch(store: Store, sheet: Sheet, **options: Any) -> tuple[BatchProcessor, str]:
    batch = processor(store, sheet, **options)
    batch_id = batch.prepare()
    result = batch.execute(batch_id)
    assert result.written.written, result.written
    return batch, batch_id


def workbook(path: Path, header: list[str], rows: list[list[Any]], merges: list[str]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    for merge in merges:
        sheet.merge_cells(merge)
    book.save(path)
    return path


def xlsx_rows(path: Path) -> list[dict[str, Any]]:
    sheet = load_workbook(path).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    return [dict(zip(values[0], row, strict=False)) for row in values[1:]]


def notes(store: Store) -> list[dict[str, Any]]:
    return [e for e in store.events_after(0, limit=10_000) if e["type"] == "job_note"]


def test_a_merge_across_output_cells_fails_only_those_cells(store: Store, tmp_path: Path) -> None:
    header = ["Company", "Website", "Notes", "Name", "Score", "Final URL"]
    path = workbook(
        tmp_path / "merged.xlsx",
        header,
        [["Acme", "https://acme.test", "a long note"], ["Beta", "https://beta.test"]],
        ["C2:F2"],
    )
    batch = processor(store, XlsxSheet(path))
    batch_id = batch.prepare()
    written = batch.execute(batch_id).written
    assert written.written and written.partial == 1  # the run says one row is incomplete
    acme, beta = xlsx_rows(path)
    # The row got its Job ID and terminal status; the cells it could not hold are named.
    assert acme["Status"] == "completed" and str(acme["Job ID"]).startswith("j-")
    assert acme["Error"] == (
        "cell D2 is inside merged range C2:F2; not written; "
        "cell E2 is inside merged range C2:F2; not written; "
        "cell F2 is inside merged range C2:F2; not written"
    )
    assert acme["Notes"] == "a long note"
    assert beta["Status"] == "completed" and beta["Name"] == "Beta" and not beta["Error"]
    assert "C2:F2" in {str(r) for r in load_workbook(path).active.merged_cells.ranges}  # type: ignore[union-attr]
    noted = [e for e in notes(store) if "merged range" in e["data"]["message"]]
    assert [e["job_id"] for e in noted] == [acme["Job ID"]]  # once, though flushed repeatedly
    assert store.batch(batch_id)["counts"]["succeeded"] == 2
    # Nothing claims the row is gone from the sheet, and a rerun has nothing to do.
    assert not [e for e in notes(store) if "deleted" in e["data"]["message"]]
    with pytest.raises(NothingToDo, match="2 rows already completed"):
        processor(store, XlsxSheet(path)).prepare()
    assert len(store.batches()) == 1


def test_a_merged_status_cell_refuses_the_run_before_anything_is_written(
    store: Store, tmp_path: Path
) -> None:
    path = workbook(
        tmp_path / "status.xlsx",
        ["Company", "Website", "Notes", "Status"],
        [["Acme", "https://acme.test", "note"], ["Beta", "https://beta.test"]],
        ["C2:D2"],
    )
    before = path.read_bytes()
    with pytest.raises(MergedTarget) as info:
        processor(store, XlsxSheet(path)).prepare()
    assert str(info.value).startswith(
        "status.xlsx: cell D2 is inside merged range C2:D2, and row 2's Status must be written "
        "there; unmerge C2:D2, or map Status to another column"
    )
    assert path.read_bytes() == before
    assert store.batches() == []


def test_a_merge_where_the_job_id_column_would_be_appended_is_refused(
    store: Store, tmp_path: Path
) -> None:
    # Used area A:C; the merge C3:E3 covers D3 and E3, where Status and Job ID would go.
    path = workbook(
        tmp_path / "append.xlsx",
        ["Company", "Website", "Notes"],
        [["Acme", "https://acme.test"], ["Beta", "https://beta.test", "merged note"]],
        ["C3:E3"],
    )
    before = path.read_bytes()
    with pytest.raises(MergedTarget, match="cell D3 is inside merged range C3:E3"):
        processor(store, XlsxSheet(path)).prepare()
    assert path.read_bytes() == before


def test_numeric_outputs_are_numbers_for_the_backends(store: Store, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["Acme", "https://a.test"]])
    batch, batch_id = run_batch(store, CsvSheet(sheet))
    job = store.jobs(batch_id=batch_id)[0]
    cells = row_cells(job, batch.pipeline.output_columns, batch.columns)
    assert isinstance(cells["Score"], int) and not isinstance(cells["Score"], bool)
    assert cells["Name"] == "Acme" and cells["Final URL"] == "https://a.test"
    assert read_csv(sheet)[0]["Score"] == str(cells["Score"])  # CSV: the number's text


def test_a_hyperlinked_website_cell_feeds_its_target(store: Store, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "links.xlsx", ["Company", "Website"], [["Acme", "Acme site"]], merges=[]
    )
    book = load_workbook(path)
    cell = book.active["B2"]  # type: ignore[index]
    cell.hyperlink = "https://acme.example/"
    book.save(path)
    _, batch_id = run_batch(store, XlsxSheet(path))
    job = store.jobs(batch_id=batch_id)[0]
    assert job["inputs"]["Website"] == "https://acme.example/"
    assert xlsx_rows(path)[0]["Final URL"] == "https://acme.example/"
    assert xlsx_rows(path)[0]["Website"] == "Acme site"  # the operator's cell as it was


def test_a_copied_row_that_keeps_its_job_id_gets_a_new_job(store: Store, tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "c.csv",
        ["Company", "Website"],
        [["Acme", "https://acme.test"], ["Beta", "https://beta.test"]],
    )
    run_batch(store, CsvSheet(sheet))
    rows = read_csv(sheet)
    header = list(rows[0])
    # The operator copies Acme's row above it, changes Company and clears Status.
    copy = {**rows[0], "Company": "Acme Copy", "Status": ""}
    write_csv(sheet, header, [[r[h] for h in header] for r in (copy, rows[0], rows[1])])
    batch, _ = run_batch(store, CsvSheet(sheet))
    assert batch.selection.copies == 1 and batch.selection.queued == 1
    final = read_csv(sheet)
    assert [r["Company"] for r in final] == ["Acme Copy", "Acme", "Beta"]
    assert [r["Status"] for r in final] == ["completed"] * 3
    assert final[1]["Job ID"] == rows[0]["Job ID"]  # the row the store recorded keeps it
    assert final[0]["Job ID"] not in (rows[0]["Job ID"], rows[1]["Job ID"])
    assert final[0]["Name"] == "Acme Copy" and final[1]["Name"] == "Acme"
    assert store.job(final[0]["Job ID"])["inputs"]["Company"] == "Acme Copy"


def test_the_final_flush_keeps_an_operators_later_edit_of_an_output_cell(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        ["Company", "Website"],
        [["Acme", "https://acme.test"], ["Beta", "https://beta.test"]],
    )
    batch = processor(store, CsvSheet(path))
    batch_id = batch.prepare()
    batch.make_pool().run_batch(batch_id)
    writer = batch.make_writer(batch_id)
    writer.flush()  # the last live flush: every row written
    rows = read_csv(path)
    header = list(rows[0])
    rows[0]["Name"] = "Acme (checked by hand)"
    rows[1]["Status"] = "queued"  # a stale save put an old status back
    rows[1]["Name"] = ""  # ... and emptied an output cell
    write_csv(path, header, [[r[h] for h in header] for r in rows])
    outcome = writer.stop(final_flush=True)
    assert outcome.written
    final = read_csv(path)
    assert final[0]["Name"] == "Acme (checked by hand)"
    assert final[1]["Status"] == "completed" and final[1]["Name"] == "Beta"


def test_a_final_flush_that_cannot_write_reports_it(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["A", "a.test"], ["B", "b.test"]])
    batch = processor(store, CsvSheet(path))
    batch_id = batch.prepare()
    batch.make_pool().run_batch(batch_id)
    lock = tmp_path / ".~lock.c.csv#"  # the file is open in LibreOffice
    lock.write_text("someone,host,1;", encoding="utf-8")
    slept: list[float] = []
    writer = batch.make_writer(batch_id)
    writer.sleep = slept.append
    outcome = writer.stop(final_flush=True)
    assert not outcome.written and outcome.unwritten == 2
    assert "locked by another program" in outcome.error
    assert slept == [0.5, 1.0, 2.0, 4.0]
    assert [r["Status"] for r in read_csv(path)] == ["", ""]  # never written
    lock.unlink()
    # The rerun writes what the store kept.
    with pytest.raises(NothingToDo, match="nothing to do"):
        processor(store, CsvSheet(path)).prepare()
    assert [r["Status"] for r in read_csv(path)] == ["completed", "completed"]


def test_score_lands_as_a_number_in_xlsx(store: Store, tmp_path: Path) -> None:
    path = workbook(tmp_path / "n.xlsx", ["Company", "Website"], [["Acme", "a.test"]], merges=[])
    run_batch(store, XlsxSheet(path))
    sheet = load_workbook(path).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    score = sheet.cell(row=2, column=header.index("Score") + 1)
    assert score.data_type == "n" and isinstance(score.value, int)
    name = sheet.cell(row=2, column=header.index("Name") + 1)
    assert name.data_type == "s" and name.value == "Acme"


class _DiesAfterWritingIds(CsvSheet):
    """A CSV sheet whose process dies right after the job ids reached the file."""

    def assign_job_ids(self, *args: Any, **kwargs: Any) -> set[int]:
        super().assign_job_ids(*args, **kwargs)
        raise _ProcessDied


class _ProcessDied(BaseException):
    pass


def _dead_owner() -> str:
    child = subprocess.Popen(["true"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:gone"


def test_every_job_id_in_the_sheet_is_known_to_the_store_even_if_the_run_dies_at_once(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "companies.csv"
    write_csv(path, ["Company", "Website"], [["Acme", "https://acme.test"], ["Beta", ""]])
    with pytest.raises(_ProcessDied):
        processor(store, _DiesAfterWritingIds(path)).prepare()
    ids = [row["Job ID"] for row in read_csv(path)]
    assert all(ids) and all(store.find_job(job_id) for job_id in ids)
    # The next run takes the rows as its own (no "values sheetbatch did not write") and
    # finishes each of them once.
    run_batch(store, CsvSheet(path))
    assert [row["Status"] for row in read_csv(path)] == ["completed", "completed"]
    succeeded = store.jobs(statuses=["succeeded"])
    assert sorted(j["label"] for j in succeeded) == ["Acme", "Beta"]


def test_a_batch_left_by_a_run_that_died_before_writing_its_ids_is_withdrawn(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "companies.csv"
    write_csv(path, ["Company", "Website"], [["Acme", "https://acme.test"], ["Beta", ""]])
    before = path.read_bytes()
    # What a process killed between recording its jobs and writing their ids leaves.
    orphan = store.create_batch(
        sheet=CsvSheet(path).name,
        pipeline="noop",
        phases=["noop"],
        jobs=[NewJob(row=2, inputs={}, label="Acme"), NewJob(row=3, inputs={}, label="Beta")],
        options={"prepared_by": _dead_owner()},
    )
    assert path.read_bytes() == before
    _, batch_id = run_batch(store, CsvSheet(path))
    assert batch_id != orphan
    left = store.batch(orphan)
    assert left["status"] != "running" and left["counts"]["cancelled"] == 2
    assert [row["Status"] for row in read_csv(path)] == ["completed", "completed"]
    assert store.batch(batch_id)["counts"]["succeeded"] == 2


def test_a_never_started_batch_of_a_live_process_is_left_alone(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "companies.csv"
    write_csv(path, ["Company", "Website"], [["Acme", "https://acme.test"]])
    # Another live process (this one) recorded its jobs and is about to write their ids.
    busy = store.create_batch(
        sheet=CsvSheet(path).name,
        pipeline="noop",
        phases=["noop"],
        jobs=[NewJob(row=2, inputs={}, label="Acme")],
        options={"prepared_by": f"{socket.gethostname()}:{os.getppid()}:alive"},
    )
    run_batch(store, CsvSheet(path))
    assert store.batch(busy)["status"] == "running"
