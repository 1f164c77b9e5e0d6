"""Delivering the outbox: claim due notifications, post them, record every attempt.

At least once: a 2xx is delivered; 408, 429, 5xx, timeouts and connection errors are
retried with exponential backoff and jitter (the first retry within 5 s, then twice as long
each time, at most an hour apart, at least what Retry-After asks) until `[notify] max_age`
after the notification was recorded; 410 Gone disables the URL for later notifications;
another answer (a 4xx, a redirect, a URL the SSRF guard refuses) fails at once with its
reason. `decide` is that rule as a pure function; `Notifier` applies it. Store calls go
through `db` (the server runs them off its event loop); time, sleep and jitter are injected.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from progress import Store
from progress.errors import ProgressError
from progress.notify_model import Attempt, Delivery, NotifyState
from progress.owners import new_owner
from progress.snapshots import iso
from sheetbatch.config import Settings
from sheetbatch.webhook_client import Response, WebhookClient
from sheetbatch.webhooks import Signer, body_for

log = logging.getLogger(__name__)

R = TypeVar("R")
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between attempts: `first` seconds, times `factor` per attempt, at most `cap`,
    jittered down to half; retried until `max_age` seconds after the notification began."""

    first: float = 5.0
    factor: float = 2.0
    cap: float = 3600.0
    max_age: float = 86400.0

    def delay(self, attempts: int, rng: Callable[[], float]) -> float:
        """Seconds before the next attempt after `attempts` failed ones (1: the first)."""
        base = min(self.cap, self.first * self.factor ** max(0, attempts - 1))
        return base * (0.5 + 0.5 * rng())


@dataclass(frozen=True)
class Decision:
    """What an attempt's response makes of its notification."""

    state: NotifyState
    next_attempt: float | None = None
    disable_url: bool = False


def decide(
    response: Response,
    *,
    attempts: int,
    since: float,
    now: float,
    policy: RetryPolicy,
    rng: Callable[[], float],
) -> Decision:
    """The rule of the module doc: delivered, retried at a time, disabled, or failed."""
    status = response.status
    if status is not None and 200 <= status < 300:
        return Decision(NotifyState.DELIVERED)
    if status == 410:
        return Decision(NotifyState.DISABLED, disable_url=True)
    if response.blocked:
        return Decision(NotifyState.FAILED)
    if status is not None and status not in RETRY_STATUSES and status < 500:
        return Decision(NotifyState.FAILED)
    wait = policy.delay(attempts, rng)
    if response.retry_after is not None:
        wait = max(wait, response.retry_after)
    if now + wait > since + policy.max_age:
        return Decision(NotifyState.FAILED)
    return Decision(NotifyState.PENDING, next_attempt=now + wait)


def _call(fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    return fn(*args, **kwargs)


class Notifier:
    """Sends the store's pending notifications (any number may run: claims keep them apart)."""

    def __init__(
        self,
        store: Store,
        client: WebhookClient,
        *,
        signer: Signer | None = None,
        public_url: str = "",
        policy: RetryPolicy | None = None,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        db: Callable[..., Any] = _call,
    ) -> None:
        self.store = store
        self.client = client
        self.signer = signer or Signer()
        self.public_url = public_url
        self.policy = policy or RetryPolicy()
        self.owner = owner or new_owner()
        self.clock = clock
        self.rng = rng
        self.sleep = sleep
        self._db = db
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Long enough that a claim never expires under an attempt still going.
        self.claim_seconds = client.timeout + 30.0

    # ------------------------------------------------------------------ one attempt
    def deliver(self, delivery: Delivery) -> NotifyState:
        """Post one claimed notification and record the attempt; its new state."""
        body = body_for(delivery, self.public_url)
        now = self.clock()
        headers = self.signer.headers(delivery.id, int(now), body)
        response = self.client.post(delivery.url, body, headers)
        after = self.clock()
        attempt: Attempt = {
            "time": iso(now),
            "status": response.status,
            "error": response.error,
            "duration": response.duration,
        }
        decision = decide(
            response,
            attempts=len(delivery.attempts) + 1,
            since=delivery.since,
            now=after,
            policy=self.policy,
            rng=self.rng,
        )
        recorded = self._db(
            self.store.record_attempt,
            delivery.id,
            self.owner,
            attempt,
            decision.state,
            next_attempt=decision.next_attempt,
            disable_url=delivery.url if decision.disable_url else None,
        )
        if not recorded:
            log.warning(
                "notification %s: the claim was taken over; attempt not recorded", delivery.id
            )
        # A retry is routine (INFO); an end without delivery is worth a WARNING.
        ended = decision.state in (NotifyState.FAILED, NotifyState.DISABLED)
        level = logging.WARNING if ended else logging.INFO
        log.log(
            level,
            "notification %s (%s) to %s: %s -> %s",
            delivery.id,
            delivery.type,
            delivery.url,
            response.error or response.status,
            decision.state.value,
        )
        return decision.state

    # ------------------------------------------------------------------ draining
    def drain(
        self,
        *,
        batch_id: str | None = None,
        ids: Sequence[str] | None = None,
        ignore_backoff: bool = False,
    ) -> dict[str, NotifyState]:
        """Send what is due now (with `ignore_backoff`: every pending one, once); the state
        each notification sent ended in, by id."""
        outcome: dict[str, NotifyState] = {}
        while True:
            claimed = self._db(
                self.store.claim_notifications,
                self.owner,
                claim_seconds=self.claim_seconds,
                batch_id=batch_id,
                ids=ids,
                ignore_backoff=ignore_backoff,
                exclude=list(outcome),
            )
            if not claimed:
                return outcome
            for delivery in claimed:
                outcome[delivery.id] = self.deliver(delivery)

    def drain_batch(self, batch_id: str, within: float) -> bool:
        """Send the batch's notifications, waiting out backoff, for up to `within` seconds;
        True when none is left pending (the rest waits for the next drainer)."""
        deadline = self.clock() + within
        while True:
            self.drain(batch_id=batch_id)
            pending = self._db(
                self.store.notifications, batch_id=batch_id, states=[NotifyState.PENDING]
            )
            if not pending:
                return True
            now = self.clock()
            due = min(d.next_attempt for d in pending)
            if due > deadline:
                return False  # not due within the time given: the next drainer sends it
            self.sleep(max(0.05, due - now))

    # ------------------------------------------------------------------ runtime
    def run(self, interval: float = 1.0) -> None:
        """Drain until `stop()`, every `interval` seconds."""
        while not self._stop.is_set():
            try:
                self.drain()
            except (ProgressError, OSError):
                # A loop boundary: the store may be briefly unavailable; claims expire.
                log.exception("sending notifications failed; trying again")
            except Exception:
                log.exception("sending notifications failed unexpectedly; trying again")
            self._stop.wait(interval)

    def start(self, interval: float = 1.0) -> None:
        """Drain on a background thread (a greenlet under gevent) until `stop()`."""
        self._thread = threading.Thread(
            target=self.run, args=(interval,), name="sheetbatch-notifier", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop draining (an attempt under way ends first, within `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.client.close()


def notifier_for(
    store: Store, settings: Settings, *, db: Callable[..., Any] = _call, **options: Any
) -> Notifier:
    """A notifier with the settings' allowed hosts, timeout, secret, public URL and max age."""
    client = WebhookClient(allow_hosts=settings.allow_hosts, timeout=settings.notify_timeout)
    return Notifier(
        store,
        client,
        signer=Signer(settings.webhook_secret),
        public_url=settings.public_url,
        policy=RetryPolicy(max_age=settings.notify_max_age),
        db=db,
        **options,
    )
