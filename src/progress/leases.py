"""Named leases with a TTL, heartbeats and an epoch: one holder at a time among processes.

`acquire(name, owner, ttl)` takes a free or expired lease (bumping its epoch) or renews the
caller's own; `renew` extends it while the caller still holds it; `release` frees it at once.
A write made on behalf of a lease holder runs `fence()` in its own transaction first: when
the lease moved on (another holder, a newer epoch, or it expired) the write is refused, so a
paused or partitioned ex-holder cannot act after someone else took over. Time is the store's
clock: on one machine all processes share it; across machines keep clocks in sync (NTP) and
TTLs well above the skew.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from progress.errors import NotLeader
from progress.schedule_model import Fence
from progress.schedule_tables import leases
from progress.snapshots import iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """A lease row: its holder (None when released), epoch and times (epoch seconds)."""

    name: str
    owner: str | None
    epoch: int
    expires: float
    acquired: float
    renewed: float

    def held(self, now: float) -> bool:
        """Whether someone holds it at `now`."""
        return self.owner is not None and self.expires >= now

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner if self.held(now) else None,
            "epoch": self.epoch,
            "expires": iso(self.expires),
            "acquired": iso(self.acquired),
            "renewed": iso(self.renewed),
            "seconds_since_renewal": round(max(0.0, now - self.renewed), 3),
        }


def _lease(row: Any) -> Lease:
    return Lease(
        name=row.name,
        owner=row.owner,
        epoch=int(row.epoch),
        expires=float(row.expires),
        acquired=float(row.acquired),
        renewed=float(row.renewed),
    )


def fence(conn: Connection, guard: Fence, now: float) -> None:
    """Refuse (NotLeader) unless `guard.owner` holds `guard.name` at `guard.epoch` now.

    Run it first in the transaction of the fenced write: on PostgreSQL the lease row stays
    share-locked until commit, so a takeover waits for the write (and the write happened
    while the lease was held); SQLite serialises writers anyway.
    """
    query = select(leases).where(leases.c.name == guard.name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    row = conn.execute(query).one_or_none()
    lease = _lease(row) if row is not None else None
    if (
        lease is None
        or lease.owner != guard.owner
        or lease.epoch != guard.epoch
        or lease.expires < now
    ):
        raise NotLeader(
            guard.name,
            guard.owner,
            guard.epoch,
            lease.owner if lease else None,
            lease.epoch if lease else 0,
        )


class LeaseOps:
    """The lease writes and reads of the store (a part of `Store`)."""

    engine: Engine
    clock: Callable[[], float]
    _write_engine: Engine
    _write_lock: AbstractContextManager[Any] | threading.Lock

    @contextmanager
    def _lease_tx(self) -> Iterator[Connection]:
        with self._write_lock, self._write_engine.begin() as conn:
            yield conn

    def acquire_lease(self, name: str, owner: str, ttl: float) -> int | None:
        """Take lease `name` for `ttl` seconds if it is free, expired or already `owner`'s.

        Returns the epoch `owner` holds it at (a new, higher one on every change of holder),
        or None when someone else holds it.
        """
        now = self.clock()
        try:
            with self._lease_tx() as conn:
                row = conn.execute(
                    select(leases).where(leases.c.name == name).with_for_update()
                ).one_or_none()
                if row is None:
                    conn.execute(
                        insert(leases).values(
                            name=name,
                            owner=owner,
                            epoch=1,
                            expires=now + ttl,
                            acquired=now,
                            renewed=now,
                        )
                    )
                    return 1
                lease = _lease(row)
                if lease.owner == owner:
                    conn.execute(
                        update(leases)
                        .where(leases.c.name == name)
                        .values(expires=now + ttl, renewed=now)
                    )
                    return lease.epoch
                if lease.held(now):
                    return None
                epoch = lease.epoch + 1
                conn.execute(
                    update(leases)
                    .where(leases.c.name == name, leases.c.epoch == lease.epoch)
                    .values(owner=owner, epoch=epoch, expires=now + ttl, acquired=now, renewed=now)
                )
                return epoch
        except IntegrityError:
            # Another process created the row at the same moment: it holds the lease.
            return None

    def renew_lease(self, name: str, owner: str, ttl: float) -> int | None:
        """Extend `owner`'s hold on `name` by `ttl` seconds from now; its epoch, or None when
        `owner` no longer holds it (someone else took it over, or it was released)."""
        now = self.clock()
        with self._lease_tx() as conn:
            row = conn.execute(
                select(leases).where(leases.c.name == name).with_for_update()
            ).one_or_none()
            if row is None or row.owner != owner:
                return None
            conn.execute(
                update(leases).where(leases.c.name == name).values(expires=now + ttl, renewed=now)
            )
            return int(row.epoch)

    def release_lease(self, name: str, owner: str) -> bool:
        """Free `name` now if `owner` holds it (the next `acquire` succeeds at once)."""
        now = self.clock()
        with self._lease_tx() as conn:
            result = conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.owner == owner)
                .values(owner=None, expires=now)
            )
            return bool(result.rowcount)

    def drop_lease(self, name: str) -> None:
        """Forget lease `name` (a member that left for good)."""
        with self._lease_tx() as conn:
            conn.execute(delete(leases).where(leases.c.name == name))

    def lease(self, name: str) -> Lease | None:
        """Lease `name` as stored, or None when it was never taken."""
        with self.engine.connect() as conn:
            row = conn.execute(select(leases).where(leases.c.name == name)).one_or_none()
        return _lease(row) if row is not None else None

    def leases_like(self, prefix: str) -> list[Lease]:
        """Every lease whose name starts with `prefix`, by name."""
        query = select(leases).where(leases.c.name.startswith(prefix)).order_by(leases.c.name)
        with self.engine.connect() as conn:
            return [_lease(row) for row in conn.execute(query)]
