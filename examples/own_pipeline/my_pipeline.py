"""A pipeline of your own: two phases, no network, run with

    sheetbatch run leads.csv --pipeline my_pipeline:pipeline

from this folder. sheetbatch imports `my_pipeline` (the current directory is on the import
path for `module:attribute` references) and runs every row of `leads.csv` through `tidy`
then `grade`, writing the `Clean name` and `Grade` columns and the row's Status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.context import JobContext
from pipeline.errors import PhaseError
from pipeline.phase import Phase, Pipeline

_LEGAL_FORMS = ("gmbh", "ltd", "inc", "llc", "ag", "sa", "bv")


def tidy(ctx: JobContext) -> Mapping[str, Any]:
    """Phase 1: a clean company name (no legal form, single spaces)."""
    words = ctx.inputs.get("Company", "").replace(",", " ").split()
    if not words:
        # A short reason: the row fails alone with "tidy: no company name".
        raise PhaseError("no company name")
    kept = [w for w in words if w.strip(".").casefold() not in _LEGAL_FORMS]
    ctx.report(1.0, "tidied")
    return {"clean_name": " ".join(kept or words)}


def grade(ctx: JobContext) -> Mapping[str, Any]:
    """Phase 2: a grade from how much the sheet already knows about the lead."""
    ctx.check()  # stops here when the batch is cancelled
    known = sum(1 for column in ("Company", "Email", "Phone") if ctx.inputs.get(column))
    ctx.log.info("graded %s", ctx.results["clean_name"])  # the job id is on every line
    return {"grade": "ABC"[3 - known] if known else "D"}


pipeline = Pipeline(
    name="leads",
    phases=[
        Phase("tidy", tidy, timeout=5.0, retries=0, outputs={"Clean name": "clean_name"}),
        Phase("grade", grade, timeout=5.0, retries=0, outputs={"Grade": "grade"}),
    ],
    inputs=("Company", "Email", "Phone"),
)
