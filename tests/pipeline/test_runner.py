"""The job runner: every phase recorded, job_id carried through, failures short and human."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import pytest

from pipeline.context import JobContext
from pipeline.errors import PhaseError, TransientError
from pipeline.phase import Phase, Pipeline
from pipeline.runner import JobRunner, backoff_delay
from pipeline.workers import WorkerPool
from progress import JobStatus, Store, open_store
from progress.batch_writes import NewJob


def one_job_batch(store: Store, pipeline: Pipeline, inputs: Mapping[str, str] | None = None) -> str:
    return store.create_batch(
        sheet="t.csv",
        pipeline=pipeline.name,
        phases=[p.name for p in pipeline.phases],
        jobs=[NewJob(row=2, inputs=inputs or {"Company": "Acme", "Website": "acme.test"})],
    )


def runner(store: Store, pipeline: Pipeline, **kw: Any) -> JobRunner:
    return JobRunner(store=store, pipeline=pipeline, owner="w", sleep=lambda s: None, **kw)


def run_one(store: Store, pipeline: Pipeline, **kw: Any) -> tuple[JobStatus, dict[str, Any]]:
    batch_id = one_job_batch(store, pipeline)
    job = store.claim_next(batch_id, "w", 30)
    assert job is not None
    status = runner(store, pipeline, **kw).run(job)
    return status, store.job(job["job_id"])


def test_the_job_id_reaches_every_phase_and_every_log_line(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str]] = []

    def phase(ctx: JobContext) -> Mapping[str, Any]:
        seen.append((ctx.job_id, ctx.batch_id))
        ctx.log.warning("working on %s", ctx.inputs["Company"])
        return {"n": len(seen)}

    pipe = Pipeline("p", [Phase(f"p{i}", phase, outputs={"N": "n"}) for i in range(4)])
    with caplog.at_level(logging.WARNING):
        status, job = run_one(store, pipe)
    assert status is JobStatus.SUCCEEDED
    assert {s for s in seen} == {(job["job_id"], job["batch_id"])} and len(seen) == 4
    lines = [r.getMessage() for r in caplog.records if "working on" in r.getMessage()]
    assert lines and all(f"[job {job['job_id']}]" in line for line in lines)
    assert job["results"]["outputs"] == {"N": "4"}
    events = store.events_after(0, job_id=job["job_id"])
    assert [e["type"] for e in events] == [
        "job_queued",
        "job_started",
        "phase_started",
        "phase_finished",
        "phase_started",
        "phase_finished",
        "phase_started",
        "phase_finished",
        "phase_started",
        "phase_finished",
        "job_succeeded",
    ]
    assert set(job["phase_seconds"]) == {"p0", "p1", "p2", "p3"}


def test_transient_errors_are_retried_then_succeed(store: Store) -> None:
    calls = []

    def flaky(ctx: JobContext) -> Mapping[str, Any]:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("connection reset")
        return {"ok": True}

    status, _ = run_one(store, Pipeline("p", [Phase("resolve", flaky, retries=3)]))
    assert status is JobStatus.SUCCEEDED and len(calls) == 3


def test_transient_errors_past_the_retry_budget_fail_with_the_reason(store: Store) -> None:
    def down(ctx: JobContext) -> Mapping[str, Any]:
        raise TransientError("timed out")

    status, job = run_one(store, Pipeline("p", [Phase("resolve", down, retries=2)]))
    assert status is JobStatus.FAILED
    assert job["error"] == "resolve: timed out" and job["error_phase"] == "resolve"


def test_a_crash_is_recorded_as_a_short_reason_and_the_traceback_goes_to_the_log(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(ctx: JobContext) -> Mapping[str, Any]:
        return {"x": {}["missing"]}

    with caplog.at_level(logging.ERROR):
        status, job = run_one(store, Pipeline("p", [Phase("extract", crash)]))
    assert status is JobStatus.FAILED
    assert job["error"] == "extract: KeyError: 'missing'"
    assert "Traceback" in caplog.text


def test_a_phase_past_its_deadline_fails_as_timed_out(store: Store) -> None:
    now = [0.0]

    def slow(ctx: JobContext) -> Mapping[str, Any]:
        now[0] += 10
        ctx.check()
        return {}

    status, job = run_one(
        store, Pipeline("p", [Phase("crawl", slow, timeout=5)]), clock=lambda: now[0]
    )
    assert status is JobStatus.FAILED and job["error"] == "crawl: timed out"


def test_cancellation_stops_a_running_job_at_the_next_phase_boundary(store: Store) -> None:
    batch_ids: list[str] = []

    def first(ctx: JobContext) -> Mapping[str, Any]:
        store.cancel_batch(ctx.batch_id)
        batch_ids.append(ctx.batch_id)
        return {}

    def second(ctx: JobContext) -> Mapping[str, Any]:
        raise AssertionError("must not run after cancel")

    status, _job = run_one(store, Pipeline("p", [Phase("a", first), Phase("b", second)]))
    assert status is JobStatus.CANCELLED
    assert store.batch(batch_ids[0])["status"] == "cancelled"


def test_a_missing_required_input_fails_the_row_alone(store: Store) -> None:
    pipe = Pipeline("p", [Phase("a", lambda ctx: {})], required=("Website",))
    batch_id = store.create_batch(
        sheet="t.csv",
        pipeline="p",
        phases=["a"],
        jobs=[
            NewJob(row=2, inputs={"Company": "A", "Website": ""}),
            NewJob(row=3, inputs={"Company": "B", "Website": "b.test"}),
        ],
    )
    WorkerPool(store=store, runner=runner(store, pipe), concurrency=2).run_batch(batch_id)
    jobs = {j["row"]: j for j in store.jobs(batch_id=batch_id)}
    assert (
        jobs[2]["status"] == "failed"
        and jobs[2]["error"] == "input: no website (column 'Website' is empty)"
    )
    assert jobs[3]["status"] == "succeeded"


def test_phase_errors_name_the_phase(store: Store) -> None:
    def refuse(ctx: JobContext) -> Mapping[str, Any]:
        raise PhaseError("blocked private address 10.0.0.5")

    _status, job = run_one(store, Pipeline("p", [Phase("resolve", refuse)]))
    assert job["error"] == "resolve: blocked private address 10.0.0.5"


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(1)
    for attempt in range(8):
        bound = min(8, 2**attempt)
        delays = [backoff_delay(attempt, base=1, cap=8, rng=rng) for _ in range(400)]
        # Full jitter: spread over [0, bound], so the bound doubles per attempt until the cap.
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > 0.9 * bound
        assert min(delays) < 0.1 * bound
        assert len(set(delays)) == len(delays)


def test_the_pool_runs_every_job_of_a_batch_exactly_once(store: Store) -> None:
    pipe = Pipeline("p", [Phase(n, lambda ctx: {}) for n in ("a", "b")])
    batch_id = store.create_batch(
        sheet="t.csv",
        pipeline="p",
        phases=["a", "b"],
        jobs=[NewJob(row=i, inputs={"Website": "x"}) for i in range(2, 42)],
    )
    WorkerPool(store=store, runner=runner(store, pipe), concurrency=6).run_batch(batch_id)
    snap = store.batch(batch_id)
    assert snap["status"] == "completed" and snap["counts"]["succeeded"] == 40
    started = [
        e["job_id"]
        for e in store.events_after(0, batch_id=batch_id, limit=10_000)
        if e["type"] == "job_started"
    ]
    assert len(started) == len(set(started)) == 40


def test_a_cancel_from_another_process_ends_the_job_cancelled_not_succeeded(
    store: Store, db_url: str
) -> None:
    other = open_store(db_url)  # another process's view of the same database
    try:

        def first(ctx: JobContext) -> Mapping[str, Any]:
            other.cancel_batch(ctx.batch_id)
            return {}

        status, job = run_one(store, Pipeline("p", [Phase("a", first), Phase("b", lambda c: {})]))
        assert status is JobStatus.CANCELLED
        assert job["status"] == "cancelled"
        assert store.batch(job["batch_id"])["status"] == "cancelled"
        types = [e["type"] for e in store.events_after(0, job_id=job["job_id"])]
        assert types[-1] == "job_cancelled" and "job_succeeded" not in types
    finally:
        other.close()


def test_progress_is_recorded_once_an_interval_after_the_phase_started(store: Store) -> None:
    # phase_started is the phase's first event: a report right after it is not written (a
    # fast phase reports nothing in between), one an interval later is.
    now = [100.0]

    def slow(ctx: JobContext) -> Mapping[str, Any]:
        ctx.report(0.1, "fetching")  # right at the start: phase_started said as much
        now[0] += 0.6
        ctx.report(0.5, "half way")  # an interval later: recorded
        ctx.report(0.6, "a moment later")  # within the interval: dropped
        return {}

    def fast(ctx: JobContext) -> Mapping[str, Any]:
        ctx.report(0.5, "half way")
        return {}

    pipe = Pipeline("p", [Phase("slow", slow), Phase("fast", fast)])
    status, job = run_one(store, pipe, clock=lambda: now[0], progress_interval=0.5)
    assert status is JobStatus.SUCCEEDED
    progress = [
        (e["data"]["name"], e["data"]["message"])
        for e in store.events_after(0, job_id=job["job_id"])
        if e["type"] == "phase_progress"
    ]
    assert progress == [("slow", "half way")]
