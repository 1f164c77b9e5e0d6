"""Finding pipelines by built-in name or `module:attribute`."""

from __future__ import annotations

import pytest

from pipeline.context import JobContext
from pipeline.errors import PipelineNotFound
from pipeline.phase import Phase, Pipeline
from pipeline.registry import builtin_names, load_pipeline
from tests.support.sites import run_phases

CUSTOM = Pipeline(name="custom", phases=[Phase("only", lambda ctx: {"done": True})])


def make_custom() -> Pipeline:
    return CUSTOM


class Holder:
    nested = CUSTOM


NOT_A_PIPELINE = 42


def needs_arguments(flavour: str) -> Pipeline:
    return CUSTOM


def test_builtins() -> None:
    assert builtin_names() == ["company", "fast", "noop"]
    assert load_pipeline("company").name == "company"
    assert load_pipeline(" noop ").name == "noop"
    assert load_pipeline("fast").name == "noop"


def test_noop_goes_through_four_named_phases_and_fills_outputs() -> None:
    pipeline = load_pipeline("noop")
    assert [p.name for p in pipeline.phases] == ["parse", "transform", "enrich", "finish"]
    reports: list[float] = []
    ctx = JobContext(
        job_id="j",
        batch_id="b",
        inputs={"Company": "  Acme   Widgets ", "Website": "acme.test"},
        reporter=lambda fraction, message: reports.append(fraction),
    )
    results = run_phases(pipeline, ctx)
    values = {column: results[key] for column, key in pipeline.output_columns.items()}
    assert values["Name"] == "Acme Widgets"
    assert values["Final URL"] == "acme.test"
    assert 0 <= int(values["Score"]) <= 100
    assert reports == [1.0, 1.0, 1.0, 1.0]
    again = run_phases(pipeline, JobContext(job_id="k", batch_id="b", inputs=dict(ctx.inputs)))
    assert again["score"] == results["score"]  # deterministic


@pytest.mark.parametrize(
    "ref",
    [
        "tests.pipeline.test_registry:CUSTOM",
        "tests.pipeline.test_registry:make_custom",
        "tests.pipeline.test_registry:Holder.nested",
    ],
)
def test_module_attribute(ref: str) -> None:
    assert load_pipeline(ref) is CUSTOM


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("nope", "unknown pipeline 'nope' (built-ins: company, fast, noop; or use module:a"),
        ("no_such_module_xyz:thing", "cannot import 'no_such_module_xyz'"),
        ("tests.pipeline.test_registry:missing", "has no attribute 'missing'"),
        ("tests.pipeline.test_registry:NOT_A_PIPELINE", "is a int, not a Pipeline"),
        ("tests.pipeline.test_registry:needs_arguments", "calling it failed"),
        (":CUSTOM", "bad pipeline reference"),
        ("tests.pipeline.test_registry:", "bad pipeline reference"),
    ],
)
def test_unknown_references_name_the_reference_and_the_builtins(ref: str, fragment: str) -> None:
    with pytest.raises(PipelineNotFound) as info:
        load_pipeline(ref)
    message = str(info.value)
    assert fragment in message
    assert repr(ref) in message
