"""Scraped text is capped and stripped of bidi controls before it is stored or written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.cells import BIDI_CONTROLS, MAX_CELL, clean_text
from pipeline.context import JobContext
from pipeline.phase import Phase, Pipeline
from pipeline.runner import JobRunner
from progress import JobStatus, Store
from progress.batch_writes import NewJob


def test_clean_text_strips_every_bidi_control_and_caps_with_an_ellipsis() -> None:
    assert clean_text("\u202egnp.exe") == "gnp.exe"
    assert clean_text("".join(f"a{c}" for c in BIDI_CONTROLS)) == "a" * len(BIDI_CONTROLS)
    assert clean_text("x" * MAX_CELL) == "x" * MAX_CELL  # at the limit: untouched
    capped = clean_text("y" * 100_000)
    assert len(capped) == MAX_CELL and capped.endswith("…") and capped[:-1] == "y" * 1999
    assert clean_text("\u200fkeep RLM\u200e") == "\u200fkeep RLM\u200e"  # marks are not controls


def test_outputs_and_results_are_cleaned_before_the_store_sees_them(store: Store) -> None:
    def scrape(ctx: JobContext) -> Mapping[str, Any]:
        return {
            "name": "\u202eAcme" + "n" * 3000,
            "file": "invoice\u2066\u202egnp.exe\u2069",
            "emails": ["a@b.test\u202e", "c@d.test"],
        }

    pipe = Pipeline(
        "scrape",
        [Phase("extract", scrape, outputs={"Name": "name", "File": "file", "Emails": "emails"})],
    )
    batch_id = store.create_batch(
        sheet="t.csv", pipeline="scrape", phases=["extract"], jobs=[NewJob(row=2, inputs={})]
    )
    job = store.claim_next(batch_id, "w", 30)
    assert job is not None
    status = JobRunner(store=store, pipeline=pipe, owner="w").run(job)
    assert status is JobStatus.SUCCEEDED
    stored = store.job(job["job_id"])
    outputs = stored["results"]["outputs"]
    assert len(outputs["Name"]) == MAX_CELL and outputs["Name"].startswith("Acmennn")
    assert outputs["Name"].endswith("…")
    assert outputs["File"] == "invoicegnp.exe"
    assert outputs["Emails"] == "a@b.test, c@d.test"
    assert stored["results"]["file"] == "invoicegnp.exe"
    assert stored["results"]["emails"] == ["a@b.test", "c@d.test"]
    events = store.events_after(0, job_id=job["job_id"], limit=100)
    assert not any(c in str(e["data"]) for e in events for c in BIDI_CONTROLS)
