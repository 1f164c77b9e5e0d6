"""A whole batch on a Google Sheet: BatchProcessor, worker pool and sheet writer, through
gspread against the stand-in, while an operator sorts and deletes rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gsheets_standin import Spreadsheet, StandIn
from pipeline.context import JobContext
from pipeline.phase import Phase, Pipeline
from progress import Store, open_store
from sheets_integration.batch import BatchProcessor, RunOptions
from sheets_integration.google_sheet import GoogleSheet
from tests.support.google import *  # noqa: F403

MakeSheet = Callable[..., GoogleSheet]
COMPANIES = [f"Company {i:02d}" for i in range(24)]


def _score(ctx: JobContext) -> dict[str, str]:
    return {"score": f"={len(ctx.inputs['Company'])}"}  # formula-looking: must stay text


PIPELINE = Pipeline(
    "test",
    [Phase("resolve", lambda ctx: {}), Phase("score", _score, outputs={"Score": "score"})],
)


@pytest.fixture
def store(sqlite_db: str) -> Iterator[Store]:
    s = open_store(sqlite_db, poll_interval=0.02)
    try:
        yield s
    finally:
        s.close()


def _processor(store: Store, sheet: GoogleSheet) -> BatchProcessor:
    options = RunOptions(concurrency=4, flush_interval=0.05, lease_seconds=10)
    return BatchProcessor(store=store, sheet=sheet, pipeline=PIPELINE, options=options)


def _rows(standin: StandIn, sheet: GoogleSheet) -> list[dict[str, str]]:
    header, *rows = standin.values(sheet.key)
    return [dict(zip(header, row + [""] * (len(header) - len(row)), strict=True)) for row in rows]


def test_a_batch_runs_end_to_end_while_the_operator_sorts(
    google_sheet: MakeSheet, standin: StandIn, store: Store
) -> None:
    sheet = google_sheet(
        [["Company", "Website"], *([c, f"{i}.example"] for i, c in enumerate(COMPANIES))]
    )
    processor = _processor(store, sheet)
    batch_id = processor.prepare()

    def operator(book: Spreadsheet) -> None:
        book.sheet().sort_by(0, descending=True)

    standin.between_read_and_write(operator, times=3)
    batch = processor.run(batch_id)
    assert batch["status"] == "completed"
    rows = _rows(standin, sheet)
    assert sorted(r["Company"] for r in rows) == COMPANIES
    for row in rows:
        job = store.job(row["Job ID"])
        assert job["label"] == row["Company"]  # every status on its own row
        assert row["Status"] == "completed"
        assert row["Score"] == f"={len(row['Company'])}"
    with standin.edit(sheet.key) as book:
        assert all(isinstance(book.sheet().get(r, 6), str) for r in range(1, 25))


def test_a_row_deleted_mid_run_is_noted_not_written_elsewhere(
    google_sheet: MakeSheet, standin: StandIn, store: Store
) -> None:
    sheet = google_sheet(
        [["Company", "Website"], *([c, f"{i}.example"] for i, c in enumerate(COMPANIES))]
    )
    processor = _processor(store, sheet)
    batch_id = processor.prepare()
    gone = sheet.read().cell(4, "Job ID")
    standin.between_read_and_write(lambda book: book.sheet().delete_rows(5))
    assert processor.run(batch_id)["status"] == "completed"
    rows = _rows(standin, sheet)
    assert len(rows) == 23 and gone not in {r["Job ID"] for r in rows}
    assert all(r["Status"] == "completed" for r in rows)
    notes = [e for e in store.events_after(0, job_id=gone) if e["type"] == "job_note"]
    assert notes and "row deleted" in notes[0]["data"]["message"]
