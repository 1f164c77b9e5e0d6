"""Token buckets kept in the store, so every process of one credential draws from one budget.

Google's quotas are per credential (60 writes a minute per service account), not per
process: two `run`s, a `serve` and a scheduler writing different batches' sheets with one
credential must share one bucket, or each spends the full quota. A bucket is one row
(`sb_quota_buckets`), taken under a row lock (PostgreSQL `FOR UPDATE`; SQLite's write lock)
in a transaction of its own: refill by the elapsed time, then grant one token or answer how
long to wait. The rule is `TokenBucket`'s (`sheets_integration.quota`), with the store's
wall clock (every process must read the same time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Float, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from progress.schema import metadata

quota_buckets = Table(
    "sb_quota_buckets",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("paused_until", Float, nullable=False),
)

_EPSILON = 1e-9
_MIN_WAIT = 0.001


def add_quota_buckets(conn: Connection) -> None:
    """Schema 5 -> 6: the shared quota buckets."""
    quota_buckets.create(conn, checkfirst=True)


@dataclass
class Bucket:
    """A bucket's row as a transaction holds it: refilled to `now`, changed in place."""

    now: float
    tokens: float
    updated: float
    paused_until: float


class QuotaState:
    """The store's quota buckets (from `Store.quota_state()`)."""

    def __init__(
        self, begin: Callable[[], AbstractContextManager[Connection]], clock: Callable[[], float]
    ) -> None:
        self._begin = begin
        self._clock = clock

    def take(self, name: str, per_minute: float, burst: float) -> float:
        """Take one token of bucket `name`: 0.0 when granted, else the seconds to wait."""
        with self._locked(name, per_minute, burst) as bucket:
            if bucket.now < bucket.paused_until:
                return bucket.paused_until - bucket.now
            if bucket.tokens >= 1.0 - _EPSILON:
                bucket.tokens = max(0.0, bucket.tokens - 1.0)
                return 0.0
            return max((1.0 - bucket.tokens) / (per_minute / 60.0), _MIN_WAIT)

    def refund(self, name: str, per_minute: float, burst: float) -> None:
        """Give back a token taken but not used (never beyond the burst)."""
        with self._locked(name, per_minute, burst) as bucket:
            bucket.tokens = min(burst, bucket.tokens + 1.0)

    def pause(self, name: str, seconds: float, per_minute: float, burst: float) -> None:
        """Grant nothing from bucket `name` for `seconds`; it restarts empty (no burst)."""
        with self._locked(name, per_minute, burst) as bucket:
            bucket.paused_until = max(bucket.paused_until, bucket.now + seconds)
            bucket.tokens = 0.0
            bucket.updated = bucket.paused_until

    def paused_until(self, name: str) -> float:
        """The store-clock time before which bucket `name` grants nothing (0: never paused)."""
        with self._begin() as conn:
            value = conn.execute(
                select(quota_buckets.c.paused_until).where(quota_buckets.c.name == name)
            ).scalar()
        return 0.0 if value is None else float(value)

    @contextmanager
    def _locked(self, name: str, per_minute: float, burst: float) -> Iterator[Bucket]:
        """Bucket `name` under its row lock, refilled to now; written back on exit."""
        with self._begin() as conn:
            row = _row(conn, name)
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(quota_buckets).values(
                                name=name, tokens=burst, updated=self._clock(), paused_until=0.0
                            )
                        )
                except IntegrityError:  # another process created it at the same moment
                    pass
                row = _row(conn, name)
                assert row is not None
            now = self._clock()
            bucket = Bucket(now, *row)
            if now > bucket.updated:
                elapsed = now - bucket.updated
                bucket.tokens = min(burst, bucket.tokens + elapsed * per_minute / 60.0)
                bucket.updated = now
            yield bucket
            conn.execute(
                update(quota_buckets)
                .where(quota_buckets.c.name == name)
                .values(
                    tokens=bucket.tokens,
                    updated=bucket.updated,
                    paused_until=bucket.paused_until,
                )
            )


def _row(conn: Connection, name: str) -> tuple[float, float, float] | None:
    query = (
        select(quota_buckets.c.tokens, quota_buckets.c.updated, quota_buckets.c.paused_until)
        .where(quota_buckets.c.name == name)
        .with_for_update()
    )
    found = conn.execute(query).first()
    return None if found is None else (float(found[0]), float(found[1]), float(found[2]))
