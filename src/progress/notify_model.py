"""What the store keeps of notifications: their types, states, targets and the rows as read.

A notification is one outcome (a batch's end, a tick that could not run, ticks missed) told
to one URL. Its id is the `webhook-id` of every attempt, so a receiver can de-duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict

from progress.snapshots import iso


class NotifyEvent(StrEnum):
    """The kinds of notification."""

    BATCH_COMPLETED = "batch.completed"
    BATCH_FAILED = "batch.failed"
    BATCH_CANCELLED = "batch.cancelled"
    TICK_FAILED = "schedule.tick_failed"
    MISSED = "schedule.missed"


class NotifyState(StrEnum):
    """Where a notification is: `pending` (to be sent, or retried), `delivered` (a 2xx),
    `failed` (a 4xx other than 408/410/429, or retried for longer than `max_age`), or
    `disabled` (its URL answered 410 Gone, now or before)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DISABLED = "disabled"


class Attempt(TypedDict):
    """One try at delivering: when (ISO), the HTTP status (None: no answer), the error, and
    how long it took (seconds)."""

    time: str | None
    status: int | None
    error: str | None
    duration: float


@dataclass(frozen=True)
class Targets:
    """Where outcomes go: URLs, and the event types they want (None: every type)."""

    urls: tuple[str, ...] = ()
    events: tuple[str, ...] | None = None

    def wants(self, event: NotifyEvent) -> bool:
        return self.events is None or event.value in self.events

    def merged(self, urls: Sequence[str]) -> Targets:
        """These targets with more URLs (duplicates dropped, order kept)."""
        return Targets(tuple(dict.fromkeys((*self.urls, *urls))), self.events)

    def to_json(self) -> dict[str, Any]:
        return {
            "urls": list(self.urls),
            "events": None if self.events is None else list(self.events),
        }

    @classmethod
    def from_json(cls, data: Any) -> Targets:
        if not isinstance(data, dict):
            return cls()
        events = data.get("events")
        return cls(
            tuple(str(u) for u in data.get("urls") or ()),
            None if events is None else tuple(str(e) for e in events),
        )


@dataclass(frozen=True)
class Delivery:
    """A notification as stored: what, where, its state and every attempt so far."""

    id: str
    type: str
    url: str
    state: NotifyState
    data: dict[str, Any]
    batch_id: str | None
    schedule_id: str | None
    tick_id: str | None
    created: float
    since: float
    next_attempt: float
    attempts: list[Attempt]
    delivered: float | None
    claim_owner: str | None
    claimed_until: float | None

    @classmethod
    def from_row(cls, row: Any) -> Delivery:
        return cls(
            id=row.id,
            type=row.type,
            url=row.url,
            state=NotifyState(row.state),
            data=dict(row.data or {}),
            batch_id=row.batch_id,
            schedule_id=row.schedule_id,
            tick_id=row.tick_id,
            created=float(row.created),
            since=float(row.since),
            next_attempt=float(row.next_attempt),
            attempts=list(row.attempts or []),
            delivered=None if row.delivered is None else float(row.delivered),
            claim_owner=row.claim_owner,
            claimed_until=None if row.claimed_until is None else float(row.claimed_until),
        )

    def to_json(self) -> dict[str, Any]:
        """What `notify deliveries --json` and the API show of it."""
        return {
            "id": self.id,
            "type": self.type,
            "url": self.url,
            "state": self.state.value,
            "batch_id": self.batch_id,
            "schedule_id": self.schedule_id,
            "tick_id": self.tick_id,
            "created": iso(self.created),
            "next_attempt": iso(self.next_attempt) if self.state is NotifyState.PENDING else None,
            "delivered": iso(self.delivered),
            "attempts": list(self.attempts),
        }
