"""Running one job through a pipeline's phases, recording every transition in the store."""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

from pipeline.cells import clean_text
from pipeline.context import JobContext
from pipeline.errors import JobCancelled, PhaseError, PhaseTimeout
from pipeline.phase import Phase, Pipeline
from progress import JobSnapshot, JobStatus, Store
from progress.errors import IllegalTransition, LeaseLost

log = logging.getLogger(__name__)


def short_reason(exc: BaseException, limit: int = 200) -> str:
    """A one-line, human-readable reason for a failure (never a traceback)."""
    if isinstance(exc, PhaseError):
        text = exc.reason
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return clean_text(" ".join(text.split()), limit)


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""
    return rng.uniform(0, min(cap, base * (2**attempt)))


class FullJitterWait(wait_base):
    """tenacity's wait for `backoff_delay`: retry n (0-based) waits
    uniform(0, min(cap, base * 2**n)), drawn from an injected `rng`.

    (tenacity's `wait_exponential_jitter` adds its jitter on top of the exponential and draws
    from the global `random`; the runner spreads the whole delay, from a seedable rng.)
    """

    def __init__(self, *, base: float, cap: float, rng: random.Random) -> None:
        self.base, self.cap, self.rng = base, cap, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        # tenacity asks for the wait before it asks whether to stop: a retry that will not
        # happen draws nothing, so a seeded rng gives the same delays as a plain loop.
        if retry_state.retry_object.stop(retry_state):
            return 0.0
        return backoff_delay(
            retry_state.attempt_number - 1, base=self.base, cap=self.cap, rng=self.rng
        )


@dataclass
class JobRunner:
    """Runs claimed jobs of one pipeline; one instance is shared by all worker threads.

    Cancellation is checked at every phase boundary (and by phases through
    `JobContext.check()`); transient errors are retried per phase with backoff and jitter.
    """

    store: Store
    pipeline: Pipeline
    owner: str
    services: Mapping[str, Any] = field(default_factory=dict)
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    cancelled: Callable[[str], bool] | None = None
    progress_interval: float = 0.5
    cancel_check_interval: float = 0.5
    # A job's success is waited for: its errors (a lost lease, a stopped batch) come back to
    # `run`. A distributed worker queues it instead: the thread acks and claims its next row
    # while the write commits (in order, after the job's other writes). Should the process
    # die before that commit, the job's lease expires and the reconciler runs the row again.
    wait_for_success: bool = True
    _cancel_cache: dict[str, tuple[float, bool]] = field(default_factory=dict)

    def _is_cancelled(self, batch_id: str) -> bool:
        if self.cancelled is not None:
            return self.cancelled(batch_id)
        if batch_id in self.store.locally_cancelled:
            return True
        # Asked at every phase boundary of every job: one read per batch per interval is
        # enough (a cancel is seen within `cancel_check_interval` seconds).
        now = self.clock()
        cached = self._cancel_cache.get(batch_id)
        if cached is not None and (cached[1] or now - cached[0] < self.cancel_check_interval):
            return cached[1]
        flag = self.store.cancel_requested(batch_id)
        self._cancel_cache[batch_id] = (now, flag)
        return flag

    def run(self, job: JobSnapshot, *, epoch: int | None = None) -> JobStatus:
        """Run a job already moved to running (by `claim_next`/`start_job`/`claim_job`); its
        final status. With `epoch` (a fenced claim) every write names it and is refused once
        the job was claimed again."""
        job_id = job["job_id"]
        batch_id = job["batch_id"]
        try:
            return self._run(job_id, batch_id, job, epoch)
        except LeaseLost:
            # Another worker owns the job now (our lease expired): its record wins.
            log.warning("[job %s] lease lost; abandoning this attempt", job_id)
            return JobStatus.QUEUED
        except IllegalTransition:
            # A queued boundary write found the batch stopped and cancelled the job; the
            # job's final write is then refused. The store's record is the truth.
            final = self.store.job(job_id)["status"]
            if final is JobStatus.RUNNING:
                raise
            log.info("[job %s] ended as %s meanwhile", job_id, final)
            return final

    def _run(self, job_id: str, batch_id: str, job: JobSnapshot, epoch: int | None) -> JobStatus:
        store, owner = self.store, self.owner
        inputs: Mapping[str, str] = job["inputs"]
        missing = [c for c in self.pipeline.required if not str(inputs.get(c, "")).strip()]
        if missing:
            reason = f"no {missing[0].lower()} (column {missing[0]!r} is empty)"
            log.info("[job %s] %s", job_id, reason)
            store.fail_job(job_id, phase="input", reason=reason, owner=owner, epoch=epoch)
            return JobStatus.FAILED
        results: dict[str, Any] = {}
        phases = list(self.pipeline.phases)
        count = len(phases)
        if self._is_cancelled(batch_id):
            store.cancel_job(job_id, "batch cancelled", owner=owner, epoch=epoch)
            return JobStatus.CANCELLED
        # Phase starts and boundaries are queued, not waited for: they commit in order
        # before this job's final (waited-for) write, which reports anything that went wrong.
        store.phase_started(job_id, 1, count, phases[0].name, owner=owner, epoch=epoch, wait=False)
        for index, phase in enumerate(phases, start=1):
            started = self.clock()
            try:
                produced = self._run_phase(phase, job_id, batch_id, inputs, results, epoch)
            except JobCancelled:
                store.cancel_job(job_id, "batch cancelled", owner=owner, epoch=epoch)
                return JobStatus.CANCELLED
            except Exception as exc:
                reason = short_reason(exc)
                if isinstance(exc, PhaseError):
                    log.info("[job %s] %s failed: %s", job_id, phase.name, reason)
                else:
                    log.error(
                        "[job %s] %s crashed: %s\n%s",
                        job_id,
                        phase.name,
                        reason,
                        traceback.format_exc(),
                    )
                store.fail_job(job_id, phase=phase.name, reason=reason, owner=owner, epoch=epoch)
                return JobStatus.FAILED
            results.update(produced)
            seconds = self.clock() - started
            if index == count:
                outputs = {
                    column: _cell_text(results.get(key))
                    for column, key in self.pipeline.output_columns.items()
                }
                store.succeed_job(
                    job_id,
                    outputs,
                    owner=owner,
                    epoch=epoch,
                    phase_seconds=seconds,
                    results=_storable(results),
                    wait=self.wait_for_success,
                )
                return JobStatus.SUCCEEDED
            # A phase boundary: the place where a cancelled batch stops its running jobs
            # (the boundary write itself also cancels the job if the batch was stopped).
            if self._is_cancelled(batch_id):
                store.phase_finished(
                    job_id, seconds=seconds, results=_storable(results), owner=owner, epoch=epoch
                )
                store.cancel_job(job_id, "batch cancelled", owner=owner, epoch=epoch)
                return JobStatus.CANCELLED
            store.advance(
                job_id,
                seconds=seconds,
                results=_storable(results),
                owner=owner,
                epoch=epoch,
                next_phase=(index + 1, count, phases[index].name),
                wait=False,
            )
        raise AssertionError("a pipeline has at least one phase")

    def _run_phase(
        self,
        phase: Phase,
        job_id: str,
        batch_id: str,
        inputs: Mapping[str, str],
        results: dict[str, Any],
        epoch: int | None = None,
    ) -> Mapping[str, Any]:
        # phase_started is the phase's first event: a report comes one interval after it at
        # the earliest (a phase that ends sooner reports nothing in between: its start and
        # end are two events a few hundred ms apart; three more writes per row cost the
        # store and the worker more than they told anyone).
        last_report = [self.clock()]

        def report(fraction: float, message: str) -> None:
            # phase_finished records 1.0 anyway; between, one event per interval is plenty.
            now = self.clock()
            if fraction >= 1.0 or now - last_report[0] < self.progress_interval:
                return
            last_report[0] = now
            self.store.phase_progress(
                job_id, fraction, message, owner=self.owner, epoch=epoch, wait=False
            )

        def attempt() -> Mapping[str, Any]:
            ctx = JobContext(
                job_id=job_id,
                batch_id=batch_id,
                inputs=inputs,
                results=dict(results),
                reporter=report,
                cancelled=lambda: self._is_cancelled(batch_id),
                deadline=self.clock() + phase.timeout,
                clock=self.clock,
                services=self.services,
            )
            produced = phase.run(ctx) or {}
            if ctx.deadline is not None and self.clock() > ctx.deadline:
                raise PhaseTimeout(f"timed out after {phase.timeout:g} s")
            return produced

        def transient(exc: BaseException) -> bool:
            # A cancel and a timeout end the phase whatever the phase calls transient.
            return isinstance(exc, phase.transient) and not isinstance(
                exc, (JobCancelled, PhaseTimeout)
            )

        def log_retry(state: RetryCallState) -> None:
            assert state.outcome is not None
            error = state.outcome.exception()
            log.info(
                "[job %s] %s: transient error (%s), retry %d/%d in %.2fs",
                job_id,
                phase.name,
                short_reason(error) if error is not None else "",
                state.attempt_number,
                phase.retries,
                state.upcoming_sleep,
            )

        retrying = Retrying(
            retry=retry_if_exception(transient),
            stop=stop_after_attempt(phase.retries + 1),
            wait=FullJitterWait(base=self.backoff_base, cap=self.backoff_cap, rng=self.rng),
            sleep=self.sleep,
            before_sleep=log_retry,
            reraise=True,  # after the last attempt, the phase's own error
        )
        return retrying(attempt)


def _cell_text(value: Any) -> str:
    """An output cell's text: capped and without bidi controls (`pipeline.cells`)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set)):
        return clean_text(", ".join(str(v) for v in value if v not in (None, "")))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return clean_text(str(value))


def _clean(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def _storable(results: Mapping[str, Any]) -> dict[str, Any]:
    """Results kept in the store: JSON-friendly values, no large page bodies."""
    out: dict[str, Any] = {}
    for key, value in results.items():
        if key.startswith("_"):
            continue
        if isinstance(value, (str, int, float, bool)) or value is None:
            if isinstance(value, str) and len(value) > 4000:
                continue
            out[key] = _clean(value)
        elif isinstance(value, (list, tuple)):
            out[key] = [_clean(v) for v in value if isinstance(v, (str, int, float, bool))][:50]
        elif isinstance(value, dict):
            out[key] = {
                str(k): _clean(v)
                for k, v in value.items()
                if isinstance(v, (str, int, float, bool))
            }
    return out
