"""A credential's token buckets kept in the progress store, shared by every process.

`quota.TokenBucket` is one process's: two processes writing with one credential would each
spend Google's full per-credential quota. `SharedTokenBucket` has the same interface and
rule, with its state in a row of the store (`progress.quota_state`), taken atomically; a
`QuotaRegistry(shared=store.quota_state())` hands these out, so a 429 seen by one process
pauses them all. The choice is made where the store is known (`sheetbatch.service`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Sleep = Callable[[float], None]


class BucketState(Protocol):
    """Where shared buckets live (the progress store's `QuotaState`)."""

    def take(self, name: str, per_minute: float, burst: float) -> float: ...

    def refund(self, name: str, per_minute: float, burst: float) -> None: ...

    def pause(self, name: str, seconds: float, per_minute: float, burst: float) -> None: ...

    def paused_until(self, name: str) -> float: ...


class SharedTokenBucket:
    """Grants requests at `per_minute`, up to `burst` at once, for every process of the
    store; `acquire` blocks (through the injected `sleep`) until a token is free."""

    def __init__(
        self, state: BucketState, name: str, per_minute: int, burst: int, *, sleep: Sleep
    ) -> None:
        self.name = name
        self.per_minute = float(per_minute)
        self.burst = float(burst)
        self._state = state
        self._sleep = sleep

    def acquire(self) -> float:
        """Take one token, waiting as long as needed; the seconds waited."""
        waited = 0.0
        while (wait := self._state.take(self.name, self.per_minute, self.burst)) > 0.0:
            self._sleep(wait)
            waited += wait
        return waited

    def refund(self) -> None:
        """Give back a token taken but not used (never beyond the burst)."""
        self._state.refund(self.name, self.per_minute, self.burst)

    def pause(self, seconds: float) -> None:
        """Grant nothing for `seconds`, in every process (a 429: the quota is spent)."""
        self._state.pause(self.name, seconds, self.per_minute, self.burst)

    @property
    def paused_until(self) -> float:
        """The store-clock time before which nothing is granted."""
        return self._state.paused_until(self.name)


def shared_bucket_name(account: str, kind: str) -> str:
    """The store row of `account`'s `kind` ("read"/"write") bucket."""
    return f"google:{account}:{kind}"
