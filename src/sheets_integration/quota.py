"""Client-side quota and retry for the Google Sheets API.

Google allows 60 read and 60 write requests per minute per user (300 per project), a batch
request counting as one, and answers 429 RESOURCE_EXHAUSTED beyond that. Every GoogleSheet
that uses the same credential draws from one pair of token buckets (reads, writes) so that
together they stay under the limit: 50 per minute each by default, bursts of 5. A 429
pauses the bucket until the minute has refilled. The buckets are the process's own, or,
with a PostgreSQL store, rows of the store shared by every process (`shared_quota.py`).

Failed requests are retried with truncated exponential backoff, `min(2**n + jitter, 64)`
seconds, for a bounded number of attempts, and only when the operation is idempotent; then
the caller gets the failure and keeps its pending writes for later.

Time, sleeping and randomness are injected, so tests run a minute of quota in no time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

from sheets_integration.shared_quota import BucketState, SharedTokenBucket, shared_bucket_name

log = logging.getLogger(__name__)

T = TypeVar("T")
Kind = Literal["read", "write"]
Clock = Callable[[], float]
Sleep = Callable[[float], None]

_EPSILON = 1e-9
_MIN_WAIT = 0.001


@dataclass(frozen=True)
class QuotaSettings:
    """Client-side request rates per credential (config section `[google]`)."""

    reads_per_minute: int = 50
    writes_per_minute: int = 50
    burst: int = 5
    pause_after_429: float = 60.0
    """Seconds a bucket stops granting after a 429 (unless the answer says Retry-After)."""

    def __post_init__(self) -> None:
        if self.reads_per_minute < 1 or self.writes_per_minute < 1 or self.burst < 1:
            raise ValueError("quota rates and burst must be at least 1")


class TokenBucket:
    """Grants requests at `per_minute`, up to `burst` at once; thread-safe.

    `acquire` blocks (through the injected `sleep`) until a token is free and the bucket
    is not paused.
    """

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated = clock()
        self._paused_until = float("-inf")

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def wait_time(self) -> float:
        """Seconds until `acquire` would grant a token (0 when one is free now)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            return self._wait(now)

    def _wait(self, now: float) -> float:
        if now < self._paused_until:
            return self._paused_until - now
        if self._tokens >= 1.0 - _EPSILON:
            return 0.0
        # Never ask for a wait so short that adding it to the clock changes nothing.
        return max((1.0 - self._tokens) / self.rate, _MIN_WAIT)

    def acquire(self) -> float:
        """Take one token, waiting as long as needed; the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._refill(now)
                wait = self._wait(now)
                if wait <= 0.0:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return waited
            self._sleep(wait)
            waited += wait

    def refund(self) -> None:
        """Give back a token taken but not used (never beyond the burst)."""
        with self._lock:
            self._refill(self._clock())
            self._tokens = min(self.burst, self._tokens + 1.0)

    def pause(self, seconds: float) -> None:
        """Grant nothing for `seconds` (a 429 told us the minute's quota is spent)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._paused_until = max(self._paused_until, now + seconds)
            # After the pause the bucket starts empty: resume at the steady rate, no burst.
            self._tokens = 0.0
            self._updated = self._paused_until

    @property
    def paused_until(self) -> float:
        """The clock reading before which nothing is granted."""
        with self._lock:
            return self._paused_until


class Bucket(Protocol):
    """What requests draw from: this process's `TokenBucket` or a `SharedTokenBucket`."""

    def acquire(self) -> float: ...

    def refund(self) -> None: ...

    def pause(self, seconds: float) -> None: ...


class AccountQuota:
    """The read and write buckets of one credential: this process's, or with `shared` (the
    progress store's buckets) those of every process using that store."""

    def __init__(
        self,
        settings: QuotaSettings,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        shared: BucketState | None = None,
        account: str = "",
    ) -> None:
        self.settings = settings
        self.read: Bucket
        self.write: Bucket
        if shared is not None:
            self.read = SharedTokenBucket(
                shared,
                shared_bucket_name(account, "read"),
                settings.reads_per_minute,
                settings.burst,
                sleep=sleep,
            )
            self.write = SharedTokenBucket(
                shared,
                shared_bucket_name(account, "write"),
                settings.writes_per_minute,
                settings.burst,
                sleep=sleep,
            )
            return
        self.read = TokenBucket(settings.reads_per_minute, settings.burst, clock=clock, sleep=sleep)
        self.write = TokenBucket(
            settings.writes_per_minute, settings.burst, clock=clock, sleep=sleep
        )

    def bucket(self, kind: Kind) -> Bucket:
        """The bucket that `kind` requests draw from."""
        return self.read if kind == "read" else self.write

    def rate_limited(self, kind: Kind, retry_after: float | None = None) -> None:
        """Record a 429 for a `kind` request: pause its bucket until the minute refills."""
        seconds = self.settings.pause_after_429 if retry_after is None else retry_after
        log.warning(
            "Google Sheets %s quota exhausted; pausing %s requests %.0f s", kind, kind, seconds
        )
        self.bucket(kind).pause(seconds)


class QuotaRegistry:
    """The `AccountQuota` of every credential in a process, keyed by account (email).

    With `shared` (the progress store's `quota_state()`), the buckets are rows of the store:
    every process using that store shares one budget per credential.
    """

    def __init__(
        self,
        settings: QuotaSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        shared: BucketState | None = None,
    ) -> None:
        self.settings = settings or QuotaSettings()
        self._clock = clock
        self._sleep = sleep
        self._shared = shared
        self._lock = threading.Lock()
        self._accounts: dict[str, AccountQuota] = {}

    def for_account(self, account: str, settings: QuotaSettings | None = None) -> AccountQuota:
        """The shared buckets of `account`, created with `settings` on first use.

        Later callers share the first buckets whatever settings they pass: the point is one
        budget per credential.
        """
        with self._lock:
            quota = self._accounts.get(account)
            if quota is None:
                quota = AccountQuota(
                    settings or self.settings,
                    clock=self._clock,
                    sleep=self._sleep,
                    shared=self._shared,
                    account=account,
                )
                self._accounts[account] = quota
            elif settings is not None and settings != quota.settings:
                log.debug("quota for %s already set to %s; keeping it", account, quota.settings)
            return quota


_default_registry = QuotaRegistry()


def default_registry() -> QuotaRegistry:
    """The process-wide registry every GoogleSheet uses unless given another."""
    return _default_registry


@dataclass(frozen=True)
class Failure:
    """A failure worth retrying: a short reason, and whether it was a quota refusal."""

    reason: str
    quota: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Truncated exponential backoff: `min(2**n + uniform(0, jitter), max_backoff)` seconds
    before retry n (0-based), for at most `max_attempts` attempts in all."""

    max_attempts: int = 6
    max_backoff: float = 64.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        return min(2.0**retry + rng.uniform(0.0, self.jitter), self.max_backoff)

    def wait(self, rng: random.Random) -> TruncatedBackoffWait:
        """This policy as a tenacity wait strategy drawing its jitter from `rng`."""
        return TruncatedBackoffWait(self, rng)


class TruncatedBackoffWait(wait_base):
    """tenacity's wait for a `RetryPolicy`: Google's `min(2**n + jitter, 64 s)`.

    It is tenacity's `wait_exponential_jitter(max=64, jitter=1)`, with the jitter drawn from
    an injected rng instead of the global `random`.
    """

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy, self.rng = policy, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        # tenacity asks for the wait before it asks whether to stop: a retry that will not
        # happen draws nothing.
        if retry_state.retry_object.stop(retry_state):
            return 0.0
        return self.policy.backoff(retry_state.attempt_number - 1, self.rng)


def call_with_retry(
    attempt: Callable[[], T],
    *,
    classify: Callable[[Exception], Failure | None],
    give_up: Callable[[Failure, Exception, int], Exception],
    policy: RetryPolicy,
    idempotent: bool,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
    what: str = "request",
) -> T:
    """Run `attempt`, retrying the failures `classify` calls transient.

    A permanent failure propagates at once. A transient one is retried after the backoff
    while attempts remain and `idempotent` is true; otherwise `give_up(failure, exc,
    attempts)` builds the exception raised (chained to the last failure). The wait before
    a retry is the backoff alone: after a 429 the bucket's pause (`rate_limited`) holds the
    next attempt until the minute refilled.
    """

    def failure_of(exc: BaseException | None) -> Failure | None:
        return classify(exc) if isinstance(exc, Exception) else None

    def log_retry(state: RetryCallState) -> None:
        assert state.outcome is not None
        failure = failure_of(state.outcome.exception())
        log.info(
            "%s failed (%s); retry %d of %d in %.1f s",
            what,
            failure.reason if failure is not None else "",
            state.attempt_number,
            policy.max_attempts - 1,
            state.upcoming_sleep,
        )

    retrying = Retrying(
        retry=retry_if_exception(lambda exc: failure_of(exc) is not None),
        # Never blindly resend what may have been applied (an append): one attempt.
        stop=stop_after_attempt(policy.max_attempts if idempotent else 1),
        wait=policy.wait(rng or random.Random()),
        sleep=sleep,
        before_sleep=log_retry,
    )
    try:
        return retrying(attempt)
    except RetryError as exhausted:
        last = exhausted.last_attempt
        exc = last.exception()
        failure = failure_of(exc)
        assert isinstance(exc, Exception) and failure is not None  # what `retry=` let through
        raise give_up(failure, exc, last.attempt_number) from exc
