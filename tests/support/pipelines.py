"""Small user pipelines (loaded by `module:attribute`, as users load theirs) for CLI tests."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from pipeline.context import JobContext
from pipeline.errors import PhaseError, TransientError
from pipeline.phase import Phase, Pipeline

NAMES = ("resolve", "crawl", "extract", "score")


def _sleepy(name: str) -> Any:
    def run(ctx: JobContext) -> Mapping[str, Any]:
        delay = float(os.environ.get("SHEETBATCH_TEST_PHASE_SECONDS", "0.2"))
        end = time.monotonic() + delay
        while time.monotonic() < end:
            ctx.check()
            time.sleep(min(0.05, delay))
        website = ctx.inputs.get("Website", "")
        if name == "crawl" and "fail" in website:
            raise PhaseError(f"cannot crawl {website}")
        return {name: True, "name": ctx.inputs.get("Company", "").upper()}

    return run


def slow() -> Pipeline:
    """Four phases that each take SHEETBATCH_TEST_PHASE_SECONDS (default 0.2 s)."""
    return Pipeline(
        name="slow",
        phases=[
            Phase(n, _sleepy(n), outputs={"Name": "name"} if n == "score" else {}) for n in NAMES
        ],
    )


def _formula(ctx: JobContext) -> Mapping[str, Any]:
    return {"name": '=HYPERLINK("http://evil.test","click")', "desc": "+cmd|' /C calc'!A0"}


formula = Pipeline(
    name="formula",
    phases=[Phase("extract", _formula, outputs={"Name": "name", "Description": "desc"})],
)

_calls: dict[str, int] = {}


def _flaky(ctx: JobContext) -> Mapping[str, Any]:
    _calls[ctx.job_id] = _calls.get(ctx.job_id, 0) + 1
    if _calls[ctx.job_id] < 3:
        raise TransientError("connection reset")
    return {"tries": _calls[ctx.job_id]}


flaky = Pipeline(
    name="flaky",
    phases=[Phase("resolve", _flaky, retries=3, outputs={"Score": "tries"})],
)
