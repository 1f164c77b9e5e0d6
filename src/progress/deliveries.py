"""Sending notifications from the outbox: claims, attempts, redelivery, reads.

A sender claims due rows (`claim_notifications`): a conditional update that sets
`claim_owner` and `claimed_until`, so two senders, in any processes, never attempt one
notification at the same moment, on SQLite and PostgreSQL alike. A claim whose owner is a
dead process of this host (kill -9) is taken over at once; another expires at
`claimed_until`. The attempt's outcome is recorded by its claimer (`record_attempt`), which
releases the claim.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.engine import Engine

from progress.errors import ProgressError
from progress.notify_model import Attempt, Delivery, NotifyState
from progress.notify_tables import disabled_urls, notifications
from progress.owners import owner_alive


def _dead(owner: str) -> bool:
    """Whether a claimer is known dead: a process of this host that is gone (another
    sender of this very process is alive: it runs beside the caller)."""
    parts = owner.rsplit(":", 2)
    if len(parts) == 3 and parts[1] == str(os.getpid()):
        return False
    return owner_alive(owner) is False


class UnknownNotification(ProgressError):
    """No notification with this id exists in the store."""

    def __init__(self, notification_id: str) -> None:
        super().__init__(f"unknown notification {notification_id!r}")
        self.notification_id = notification_id


class DeliveryOps:
    """The outbox's sending side (a part of `Store`)."""

    engine: Engine
    clock: Callable[[], float]
    _write_engine: Engine
    _write_lock: AbstractContextManager[Any] | threading.Lock

    @contextmanager
    def _outbox_tx(self) -> Iterator[Connection]:
        with self._write_lock, self._write_engine.begin() as conn:
            yield conn

    def claim_notifications(
        self,
        owner: str,
        *,
        claim_seconds: float,
        limit: int = 20,
        batch_id: str | None = None,
        ids: Sequence[str] | None = None,
        ignore_backoff: bool = False,
        exclude: Sequence[str] = (),
    ) -> list[Delivery]:
        """Claim up to `limit` pending notifications that are due (all pending ones with
        `ignore_backoff`) for `owner`, for `claim_seconds`; the ones claimed, oldest first.
        `exclude`: ids not to claim (those a sender already tried in this round)."""
        now = self.clock()
        query = (
            select(notifications)
            .where(notifications.c.state == NotifyState.PENDING.value)
            .order_by(notifications.c.next_attempt, notifications.c.created)
            .limit(limit + 500)
        )
        if not ignore_backoff:
            query = query.where(notifications.c.next_attempt <= now)
        if batch_id is not None:
            query = query.where(notifications.c.batch_id == batch_id)
        if ids is not None:
            query = query.where(notifications.c.id.in_(list(ids)))
        if exclude:
            query = query.where(notifications.c.id.not_in(list(exclude)))
        claimed: list[Delivery] = []
        with self._outbox_tx() as conn:
            for row in conn.execute(query).all():
                if len(claimed) >= limit:
                    break
                holder = row.claim_owner
                held = row.claimed_until is not None and row.claimed_until >= now
                if held and not _dead(holder or ""):
                    continue  # someone (alive, or unknown) is attempting it now
                same_claim = [
                    notifications.c.claim_owner.is_(None)
                    if holder is None
                    else notifications.c.claim_owner == holder,
                    notifications.c.claimed_until.is_(None)
                    if row.claimed_until is None
                    else notifications.c.claimed_until == row.claimed_until,
                ]
                result = conn.execute(
                    update(notifications)
                    .where(
                        notifications.c.id == row.id,
                        notifications.c.state == NotifyState.PENDING.value,
                        *same_claim,
                    )
                    .values(claim_owner=owner, claimed_until=now + claim_seconds, updated=now)
                )
                if result.rowcount == 1:
                    claimed.append(
                        replace(
                            Delivery.from_row(row),
                            claim_owner=owner,
                            claimed_until=now + claim_seconds,
                        )
                    )
        return claimed

    def record_attempt(
        self,
        notification_id: str,
        owner: str,
        attempt: Attempt,
        state: NotifyState,
        *,
        next_attempt: float | None = None,
        disable_url: str | None = None,
    ) -> bool:
        """Append `attempt` and move the notification to `state` (pending: retried at
        `next_attempt`), releasing `owner`'s claim. With `disable_url` (a 410), later
        notifications to that URL are recorded disabled. False when `owner` no longer held
        the claim: the outcome is not recorded then (the holder's counts)."""
        now = self.clock()
        with self._outbox_tx() as conn:
            query = select(notifications).where(notifications.c.id == notification_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).one_or_none()
            if row is None:
                raise UnknownNotification(notification_id)
            if row.claim_owner != owner:
                return False
            values: dict[str, Any] = {
                "attempts": [*list(row.attempts or []), dict(attempt)],
                "state": state.value,
                "claim_owner": None,
                "claimed_until": None,
                "updated": now,
            }
            if state is NotifyState.DELIVERED:
                values["delivered"] = now
                conn.execute(delete(disabled_urls).where(disabled_urls.c.url == row.url))
            if next_attempt is not None:
                values["next_attempt"] = next_attempt
            conn.execute(
                update(notifications).where(notifications.c.id == notification_id).values(**values)
            )
            if disable_url is not None:
                known = conn.execute(
                    select(disabled_urls.c.url).where(disabled_urls.c.url == disable_url)
                ).first()
                if known is None:
                    conn.execute(
                        insert(disabled_urls).values(
                            url=disable_url, reason=attempt.get("error") or "410", since=now
                        )
                    )
            return True

    def redeliver(self, notification_id: str) -> Delivery:
        """Make a notification pending again, due now (the same id: receivers de-duplicate);
        its retries start over (`since`)."""
        now = self.clock()
        with self._outbox_tx() as conn:
            result = conn.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(
                    state=NotifyState.PENDING.value,
                    since=now,
                    next_attempt=now,
                    updated=now,
                )
            )
            if result.rowcount != 1:
                raise UnknownNotification(notification_id)
        return self.notification(notification_id)

    def notification(self, notification_id: str) -> Delivery:
        """The notification by id; raises UnknownNotification."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(notifications).where(notifications.c.id == notification_id)
            ).one_or_none()
        if row is None:
            raise UnknownNotification(notification_id)
        return Delivery.from_row(row)

    def notifications(
        self,
        *,
        batch_id: str | None = None,
        states: Sequence[NotifyState] | None = None,
        limit: int = 1000,
    ) -> list[Delivery]:
        """Notifications (of one batch, in some states), oldest first."""
        query = select(notifications).order_by(notifications.c.created, notifications.c.id)
        if batch_id is not None:
            query = query.where(notifications.c.batch_id == batch_id)
        if states is not None:
            query = query.where(notifications.c.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            return [Delivery.from_row(row) for row in conn.execute(query.limit(limit))]

    def disabled_urls(self) -> dict[str, str]:
        """URLs that answered 410 Gone, with the reason recorded."""
        with self.engine.connect() as conn:
            return {str(r.url): str(r.reason) for r in conn.execute(select(disabled_urls))}
