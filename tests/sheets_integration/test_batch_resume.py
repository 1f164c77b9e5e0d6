"""The batch processor's resume and assign logic on a real CSV sheet and a real store: an
interrupted batch is resumed (not doubled), finished rows are left alone, a batch a live
process runs is refused, rows sorted while ids are assigned keep their own ids, and a
pipeline that declares no inputs gets the whole row."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pipeline.phase import Phase, Pipeline
from progress import JobStatus, Store
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.errors import BatchBusy
from tests.support.cli import read_csv, write_csv
from tests.support.factory import local_store, processor

HEADER = ["Company", "Website"]
ROWS = [["Acme", "acme.test"], ["Beta", "beta.test"], ["Corp", "corp.test"]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with local_store(tmp_path) as s:
        yield s


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "c.csv", HEADER, ROWS)


def job_ids(path: Path) -> list[str]:
    return [r["Job ID"] for r in read_csv(path)]


def test_an_interrupted_batch_is_resumed_with_its_jobs(store: Store, sheet: Path) -> None:
    first = processor(store, CsvSheet(sheet))
    batch_id = first.prepare()
    ids = job_ids(sheet)
    # The process died before running anything: the next run takes the same batch and ids.
    again = processor(store, CsvSheet(sheet))
    assert again.prepare() == batch_id
    assert again.selection.resumed == 3 and again.selection.queued == 0
    assert job_ids(sheet) == ids
    assert store.job_ids(batch_id) == ids


@pytest.mark.parametrize(("retry_failed", "rerun"), [(False, ["Corp"]), (True, ["Beta", "Corp"])])
def test_finished_rows_are_left_alone_and_failed_ones_retried_on_request(
    store: Store, sheet: Path, retry_failed: bool, rerun: list[str]
) -> None:
    first = processor(store, CsvSheet(sheet))
    batch_id = first.prepare()
    [acme, beta, _corp] = job_ids(sheet)
    for job_id in (acme, beta):
        store.start_job(job_id, first.owner, 30)
    store.succeed_job(acme, {}, owner=first.owner)
    store.fail_job(beta, phase="parse", reason="boom", owner=first.owner)
    store.cancel_batch(batch_id)  # Corp never ran; the batch ends (no status reached the sheet)
    assert store.batch(batch_id)["status"] == "cancelled"
    again = processor(store, CsvSheet(sheet), retry_failed=retry_failed)
    rerun_id = again.prepare()
    assert rerun_id != batch_id
    labels = [store.job(j)["label"] for j in store.job_ids(rerun_id)]
    assert labels == rerun
    # The settled rows got their final state from the store, and keep their job ids.
    rows = {r["Company"]: r for r in read_csv(sheet)}
    assert rows["Acme"]["Status"] == "completed" and rows["Acme"]["Job ID"] == acme
    if not retry_failed:
        assert rows["Beta"]["Status"] == "failed: parse: boom" and rows["Beta"]["Job ID"] == beta


def test_a_batch_a_live_process_runs_is_refused(store: Store, sheet: Path) -> None:
    first = processor(store, CsvSheet(sheet))
    batch_id = first.prepare()
    # Another live process of this host (our parent) holds a running job's lease.
    holder = f"{socket.gethostname()}:{os.getppid()}:beef01"
    store.start_job(store.job_ids(batch_id)[0], holder, 30)
    with pytest.raises(BatchBusy, match=holder):
        processor(store, CsvSheet(sheet)).prepare()


def test_a_dead_owners_batch_is_resumed(store: Store, sheet: Path) -> None:
    first = processor(store, CsvSheet(sheet))
    batch_id = first.prepare()
    dead = f"{socket.gethostname()}:{2**22 + 12345}:dead01"  # no such pid
    store.start_job(store.job_ids(batch_id)[0], dead, 30)
    assert processor(store, CsvSheet(sheet)).prepare() == batch_id


class SortsOnFirstAssign(CsvSheet):
    """The operator sorts the sheet Z-A right after the run read it (before ids land)."""

    sorted_once = False

    def assign_job_ids(self, *args: Any, **kw: Any) -> set[int]:
        if not self.sorted_once:
            self.sorted_once = True
            rows = read_csv(self.path)
            write_csv(self.path, HEADER, [[r[c] for c in HEADER] for r in rows[::-1]])
        return super().assign_job_ids(*args, **kw)


def test_rows_sorted_while_ids_are_assigned_keep_their_own_jobs(store: Store, sheet: Path) -> None:
    batch = processor(store, SortsOnFirstAssign(sheet))
    batch_id = batch.prepare()
    rows = read_csv(sheet)
    assert [r["Company"] for r in rows] == ["Corp", "Beta", "Acme"]
    for r in rows:
        job = store.job(r["Job ID"])
        assert job["batch_id"] == batch_id and job["inputs"]["Company"] == r["Company"]
        assert job["label"] == r["Company"]
    assert len(store.job_ids(batch_id)) == 3


def _echo(ctx: Any) -> Mapping[str, Any]:
    return {"seen": ",".join(sorted(ctx.inputs))}


def test_a_pipeline_without_declared_inputs_reads_the_whole_row(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "w.csv", ["Lead", "Notes", "Status"], [["Ada", "call back", ""], ["Bob", "", ""]]
    )
    whole_row = Pipeline("whole", [Phase("echo", _echo, outputs={"Seen": "seen"})])
    assert whole_row.inputs == ()
    batch = processor(store, CsvSheet(path), whole_row)
    batch_id = batch.prepare()
    batch.execute(batch_id)
    jobs = store.jobs(batch_id=batch_id)
    # Every column the run does not write (not Status, Job ID, Seen ...) is an input.
    assert [j["inputs"] for j in jobs] == [
        {"Lead": "Ada", "Notes": "call back"},
        {"Lead": "Bob", "Notes": ""},
    ]
    assert [j["label"] for j in jobs] == ["Ada", "Bob"]
    assert all(j["status"] is JobStatus.SUCCEEDED for j in jobs)
    assert [r["Seen"] for r in read_csv(path)] == ["Lead,Notes", "Lead,Notes"]
