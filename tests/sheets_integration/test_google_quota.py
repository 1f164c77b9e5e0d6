"""Token buckets, the per-credential registry and the retry policy, on a manual clock."""

from __future__ import annotations

import random

import pytest

from gsheets_standin import ManualClock
from sheets_integration.google_access import request_kind
from sheets_integration.quota import (
    AccountQuota,
    Failure,
    QuotaRegistry,
    QuotaSettings,
    RetryPolicy,
    TokenBucket,
    call_with_retry,
    default_registry,
)


def test_bucket_grants_a_burst_then_the_steady_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(60, 3, clock=clock.now, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits == [0, 0, 0, pytest.approx(1), pytest.approx(1), pytest.approx(1)]
    clock.advance(10)
    assert bucket.wait_time() == 0  # refilled, up to the burst


def test_a_paused_bucket_waits_for_the_minute_then_resumes_without_a_burst() -> None:
    clock = ManualClock()
    quota = AccountQuota(
        QuotaSettings(writes_per_minute=60, burst=5), clock=clock.now, sleep=clock.sleep
    )
    quota.rate_limited("write")
    assert quota.write.paused_until == 60
    assert quota.read.wait_time() == 0  # reads have their own bucket
    assert quota.write.acquire() == pytest.approx(61)
    assert quota.write.acquire() == pytest.approx(1)
    quota.rate_limited("write", retry_after=5)
    assert quota.write.acquire() == pytest.approx(5 + 1, abs=0.01)


def test_tiny_waits_still_move_a_manual_clock() -> None:
    clock = ManualClock(start=1e6)
    bucket = TokenBucket(1000, 1, clock=clock.now, sleep=clock.sleep)
    for _ in range(100):
        bucket.acquire()
    assert clock.now() > 1e6


def test_registry_shares_buckets_per_account() -> None:
    registry = QuotaRegistry(QuotaSettings(reads_per_minute=10))
    first = registry.for_account("a@x")
    assert registry.for_account("a@x", QuotaSettings(reads_per_minute=99)) is first
    assert first.settings.reads_per_minute == 10
    assert registry.for_account("b@x") is not first
    assert default_registry() is default_registry()


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        QuotaSettings(burst=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_backoff_is_exponential_jittered_and_truncated() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    delays = [policy.backoff(n, rng) for n in range(9)]
    for n, delay in enumerate(delays[:6]):
        assert 2**n <= delay <= 2**n + 1
    assert delays[6:] == [64.0, 64.0, 64.0]


class Boom(Exception):
    pass


def _classify(exc: Exception) -> Failure | None:
    return Failure(str(exc), quota="429" in str(exc)) if isinstance(exc, Boom) else None


def _give_up(failure: Failure, exc: Exception, attempts: int) -> Exception:
    return RuntimeError(f"gave up after {attempts}: {failure.reason}")


def test_transient_failures_are_retried_with_backoff() -> None:
    clock = ManualClock()
    outcomes: list[Exception | str] = [Boom("503"), Boom("429"), "ok"]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = call_with_retry(
        attempt,
        classify=_classify,
        give_up=_give_up,
        policy=RetryPolicy(),
        idempotent=True,
        sleep=clock.sleep,
        rng=random.Random(0),
    )
    assert result == "ok"
    assert len(clock.sleeps) == 2 and 1 <= clock.sleeps[0] <= 2 <= clock.sleeps[1] <= 3


def test_attempts_are_bounded() -> None:
    clock = ManualClock()
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        raise Boom("500")

    with pytest.raises(RuntimeError, match="gave up after 4: 500") as caught:
        call_with_retry(
            attempt,
            classify=_classify,
            give_up=_give_up,
            policy=RetryPolicy(max_attempts=4),
            idempotent=True,
            sleep=clock.sleep,
        )
    assert calls == 4 and len(clock.sleeps) == 3
    assert isinstance(caught.value.__cause__, Boom)


def test_permanent_failures_and_non_idempotent_requests_are_not_retried() -> None:
    clock = ManualClock()

    def permanent() -> None:
        raise ValueError("400")

    with pytest.raises(ValueError):
        call_with_retry(
            permanent,
            classify=_classify,
            give_up=_give_up,
            policy=RetryPolicy(),
            idempotent=True,
            sleep=clock.sleep,
        )

    def append() -> None:
        raise Boom("timeout")  # it may have been applied: never blindly resend an append

    with pytest.raises(RuntimeError, match="gave up after 1"):
        call_with_retry(
            append,
            classify=_classify,
            give_up=_give_up,
            policy=RetryPolicy(),
            idempotent=False,
            sleep=clock.sleep,
        )
    assert clock.sleeps == []


def test_a_token_taken_but_not_used_goes_back() -> None:
    clock = ManualClock()
    bucket = TokenBucket(60, 2, clock=clock.now, sleep=clock.sleep)
    bucket.acquire()
    bucket.refund()
    bucket.refund()  # never beyond the burst
    assert [bucket.acquire(), bucket.acquire(), bucket.acquire()] == [0, 0, pytest.approx(1)]


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("get", "/v4/spreadsheets/k", "read"),
        ("post", "/v4/spreadsheets/k/values:batchGetByDataFilter", "read"),
        ("post", "/v4/spreadsheets/k:getByDataFilter?fields=sheets", "read"),
        ("post", "/v4/spreadsheets/k/developerMetadata:search", "read"),
        ("post", "/v4/spreadsheets/k/values:batchUpdateByDataFilter", "write"),
        ("post", "/v4/spreadsheets/k:batchUpdate", "write"),
    ],
)
def test_by_data_filter_reads_count_as_reads(method: str, path: str, kind: str) -> None:
    assert request_kind(method, "https://sheets.googleapis.com" + path) == kind
