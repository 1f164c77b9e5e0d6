"""The batch core on a Google Sheet (gspread against the stand-in): the operator's columns are
refused before any write, mapped columns are honoured, a copied row gets its own job, and
the final flush keeps an operator's later edit of an output cell."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gsheets_standin import StandIn
from pipeline.registry import load_pipeline
from progress import Store, open_store
from sheets_integration.batch import BatchProcessor, NothingToDo, RunOptions
from sheets_integration.errors import ForeignValues
from sheets_integration.google_sheet import GoogleSheet
from tests.support.google import *  # noqa: F403

MakeSheet = Callable[..., GoogleSheet]


@pytest.fixture
def store(sqlite_db: str) -> Iterator[Store]:
    with open_store(sqlite_db, poll_interval=0.02) as s:
        yield s


def processor(store: Store, sheet: GoogleSheet, **options: Any) -> BatchProcessor:
    return BatchProcessor(
        store=store,
        sheet=sheet,
        pipeline=load_pipeline("noop"),
        options=RunOptions(concurrency=2, flush_interval=0.05, lease_seconds=10, **options),
    )


def rows(standin: StandIn, sheet: GoogleSheet) -> list[dict[str, str]]:
    header, *body = standin.values(sheet.key)
    return [dict(zip(header, row + [""] * (len(header) - len(row)), strict=True)) for row in body]


def test_the_operators_column_is_refused_before_any_write(
    google_sheet: MakeSheet, standin: StandIn, store: Store
) -> None:
    sheet = google_sheet(
        [["Company", "Website", "Name"], ["Acme", "acme.example", "Alice Smith (our contact)"]]
    )
    before = standin.values(sheet.key)
    with pytest.raises(ForeignValues, match=r"column 'Name' holds values .* \(row 2: 'Alice"):
        processor(store, sheet).prepare()
    assert standin.values(sheet.key) == before
    assert store.batches() == []


def test_mapped_columns_are_written_and_found_again(
    google_sheet: MakeSheet, standin: StandIn, store: Store
) -> None:
    sheet = google_sheet(
        [
            ["Company", "Website", "Name", "Job ID"],
            ["Acme", "acme.example", "Alice", "JOB-1"],
            ["Beta", "beta.example", "", "JOB-2"],
        ]
    )
    mapping = {"Name": "Found name", "Job ID": "sheetbatch job"}
    batch = processor(store, sheet, output_columns=mapping)
    assert batch.run(batch.prepare())["status"] == "completed"
    found = rows(standin, sheet)
    assert [r["Name"] for r in found] == ["Alice", ""]
    assert [r["Job ID"] for r in found] == ["JOB-1", "JOB-2"]
    assert [r["Found name"] for r in found] == ["Acme", "Beta"]
    assert [r["Status"] for r in found] == ["completed", "completed"]
    assert all(store.job(r["sheetbatch job"])["label"] == r["Company"] for r in found)
    with pytest.raises(NothingToDo, match="2 rows already completed"):
        processor(store, sheet, output_columns=mapping).prepare()


def test_a_copied_row_with_its_job_id_gets_a_new_job(
    google_sheet: MakeSheet, standin: StandIn, store: Store
) -> None:
    sheet = google_sheet([["Company", "Website"], ["Acme", "acme.example"]])
    first = processor(store, sheet)
    first.run(first.prepare())
    header = standin.values(sheet.key)[0]
    original = rows(standin, sheet)[0]
    # The operator copies Acme's row above it (Job ID and all), renames it, clears Status.
    copy = {**original, "Company": "Acme Copy", "Status": ""}
    with standin.edit(sheet.key) as book:
        grid = book.sheet()
        grid.insert_rows(1)
        for column, name in enumerate(header):
            grid.set(1, column, copy[name] or None)
    second = processor(store, sheet)
    second.run(second.prepare())
    assert second.selection.copies == 1 and second.selection.queued == 1
    copied, acme = rows(standin, sheet)
    assert acme["Job ID"] == original["Job ID"] and acme["Name"] == "Acme"
    assert copied["Job ID"] != original["Job ID"] and copied["Name"] == "Acme Copy"
    assert copied["Status"] == "completed"
    assert store.job(copied["Job ID"])["inputs"]["Company"] == "Acme Copy"


def test_the_final_flush_keeps_an_operators_later_edit(
    google_sheet: MakeSheet, standin: StandIn, store: Store
) -> None:
    sheet = google_sheet([["Company", "Website"], ["Acme", "acme.example"]])
    batch = processor(store, sheet)
    batch_id = batch.prepare()
    batch.make_pool().run_batch(batch_id)
    writer = batch.make_writer(batch_id)
    writer.flush()
    header = standin.values(sheet.key)[0]
    with standin.edit(sheet.key) as book:
        book.sheet().set(1, header.index("Name"), "Acme Inc. (checked)")
    assert writer.stop(final_flush=True).written
    assert rows(standin, sheet)[0]["Name"] == "Acme Inc. (checked)"
    assert rows(standin, sheet)[0]["Status"] == "completed"
