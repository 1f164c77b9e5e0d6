"""The runner's per-phase retries: how often, how long it waits, what it logs, what it gives up
with. The waits are read from the injected sleep, so a backoff that stops growing, loses its
jitter or ignores the cap fails here."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import pytest

from pipeline.context import JobContext
from pipeline.errors import JobCancelled, PhaseError, PhaseTimeout, TransientError
from pipeline.phase import Phase, Pipeline
from pipeline.runner import JobRunner, backoff_delay
from progress import JobStatus, Store
from progress.batch_writes import NewJob


def run_with(
    store: Store, phase: Phase, *, seed: int = 5, base: float = 1.0, cap: float = 8.0
) -> tuple[JobStatus, dict[str, Any], list[float]]:
    """Run one job of a one-phase pipeline; its status, snapshot and the waits slept."""
    pipe = Pipeline("p", [phase])
    batch_id = store.create_batch(
        sheet="t.csv", pipeline="p", phases=[phase.name], jobs=[NewJob(row=2, inputs={})]
    )
    job = store.claim_next(batch_id, "w", 30)
    assert job is not None
    slept: list[float] = []
    runner = JobRunner(
        store=store,
        pipeline=pipe,
        owner="w",
        sleep=slept.append,
        rng=random.Random(seed),
        backoff_base=base,
        backoff_cap=cap,
    )
    status = runner.run(job)
    return status, store.job(job["job_id"]), slept


def always(error: BaseException, calls: list[int]) -> Any:
    def run(ctx: JobContext) -> Mapping[str, Any]:
        calls.append(1)
        raise error

    return run


def test_each_retry_waits_the_full_jitter_backoff_of_its_number(store: Store) -> None:
    calls: list[int] = []
    phase = Phase("resolve", always(TransientError("connection reset"), calls), retries=6)
    status, job, slept = run_with(store, phase, seed=5, base=1.0, cap=8.0)
    assert status is JobStatus.FAILED and job["error"] == "resolve: connection reset"
    assert len(calls) == 7 and len(slept) == 6
    # The same seed through the documented formula gives the very same waits, in order:
    # retry n waits uniform(0, min(cap, base * 2**n)).
    rng = random.Random(5)
    assert slept == [backoff_delay(n, base=1.0, cap=8.0, rng=rng) for n in range(6)]
    # And the bounds hold whatever the draws: growing, then capped.
    assert all(0 <= wait <= min(8.0, 2.0**n) for n, wait in enumerate(slept))


def test_the_waits_grow_until_the_cap(store: Store) -> None:
    # With many draws per retry number, the largest wait of retry n is near its bound:
    # a backoff that never grows (or ignores the cap) cannot produce these maxima.
    largest = [0.0] * 5
    for seed in range(60):
        calls: list[int] = []
        phase = Phase("crawl", always(TransientError("503"), calls), retries=5)
        _status, _job, slept = run_with(store, phase, seed=seed, base=0.5, cap=4.0)
        assert len(slept) == 5
        largest = [max(a, b) for a, b in zip(largest, slept, strict=True)]
    bounds = [min(4.0, 0.5 * 2**n) for n in range(5)]  # 0.5, 1, 2, 4, 4
    assert all(0.8 * bound < top <= bound for top, bound in zip(largest, bounds, strict=True))


def test_a_retry_is_logged_with_the_job_id_its_number_and_its_wait(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    phase = Phase("resolve", always(TransientError("connection reset"), calls), retries=2)
    with caplog.at_level(logging.INFO, logger="pipeline.runner"):
        _status, job, slept = run_with(store, phase)
    lines = [r.getMessage() for r in caplog.records if "transient error" in r.getMessage()]
    assert lines == [
        f"[job {job['job_id']}] resolve: transient error (connection reset), "
        f"retry {n}/2 in {wait:.2f}s"
        for n, wait in enumerate(slept, start=1)
    ]


def test_errors_the_phase_does_not_call_transient_are_not_retried(store: Store) -> None:
    calls: list[int] = []
    status, job, slept = run_with(
        store, Phase("resolve", always(PhaseError("blocked"), calls), retries=3)
    )
    assert status is JobStatus.FAILED and job["error"] == "resolve: blocked"
    assert calls == [1] and slept == []


def test_a_timeout_and_a_cancel_are_never_retried_even_when_declared_transient(
    store: Store,
) -> None:
    calls: list[int] = []
    phase = Phase(
        "crawl", always(PhaseTimeout("timed out"), calls), retries=3, transient=(PhaseError,)
    )
    status, job, slept = run_with(store, phase)
    assert status is JobStatus.FAILED and job["error"] == "crawl: timed out"
    assert calls == [1] and slept == []

    calls = []
    phase = Phase("crawl", always(JobCancelled(), calls), retries=3, transient=(Exception,))
    status, _job, slept = run_with(store, phase)
    assert status is JobStatus.CANCELLED and calls == [1] and slept == []


def test_a_phase_that_recovers_succeeds_after_its_waits(store: Store) -> None:
    calls: list[int] = []

    def flaky(ctx: JobContext) -> Mapping[str, Any]:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("reset")
        return {"ok": True}

    status, _job, slept = run_with(store, Phase("resolve", flaky, retries=5), seed=9)
    rng = random.Random(9)
    assert status is JobStatus.SUCCEEDED and len(calls) == 3
    assert slept == [backoff_delay(n, base=1.0, cap=8.0, rng=rng) for n in range(2)]
