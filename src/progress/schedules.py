"""Schedules in the store: create, change, pause, resume, delete; each change an event.

Schedule events go to the log with the schedule's id as their `batch_id` (the log's stream
key), so `/events/schedules/<id>` follows one schedule the way a batch stream follows a
batch.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine

from progress.commit import Tx
from progress.errors import DuplicateSchedule, UnknownSchedule
from progress.leases import fence
from progress.schedule_model import Catchup, Fence, NewSchedule, Overlap, ScheduleRow
from progress.schedule_tables import schedules, ticks
from progress.status import ScheduleEventType

R = TypeVar("R")

# The columns a change may set (PATCH); `cursor`, `failures` and times are the store's.
CHANGEABLE = frozenset(
    {"name", "sheet", "pipeline", "options", "trigger", "overlap", "catchup", "notify"}
)


def new_schedule_id() -> str:
    """A unique, URL-safe schedule id."""
    return "s-" + secrets.token_hex(6)


def schedule_row(conn: Connection, schedule_id: str) -> ScheduleRow:
    """The schedule as `conn` sees it; raises UnknownSchedule."""
    row = conn.execute(
        select(schedules).where(schedules.c.schedule_id == schedule_id)
    ).one_or_none()
    if row is None:
        raise UnknownSchedule(schedule_id)
    return ScheduleRow.from_row(row)


def emit_schedule(tx: Tx, kind: ScheduleEventType, schedule: ScheduleRow | str, **data: Any) -> int:
    """Append a schedule event (the schedule's JSON, or only its id once deleted)."""
    if isinstance(schedule, str):
        return tx.emit(kind, schedule, None, {"schedule_id": schedule, **data})
    payload = {"schedule_id": schedule.schedule_id, "schedule": schedule.to_json(), **data}
    return tx.emit(kind, schedule.schedule_id, None, payload)


class ScheduleOps:
    """The schedule writes and reads of the store (a part of `Store`)."""

    engine: Engine
    clock: Callable[[], float]

    def _apply(self, op: Callable[[Tx], R]) -> R:
        raise NotImplementedError  # JobTransitions provides it

    # ------------------------------------------------------------------ writes
    def create_schedule(self, spec: NewSchedule, *, schedule_id: str | None = None) -> ScheduleRow:
        """Create a schedule; due times start after now. Raises DuplicateSchedule by name."""
        sid = schedule_id or new_schedule_id()

        def _op(tx: Tx) -> ScheduleRow:
            clash = tx.conn.execute(
                select(schedules.c.schedule_id).where(schedules.c.name == spec.name)
            ).scalar_one_or_none()
            if clash is not None:
                raise DuplicateSchedule(spec.name, clash)
            values = {
                "schedule_id": sid,
                "name": spec.name,
                "sheet": spec.sheet,
                "pipeline": spec.pipeline,
                "options": dict(spec.options),
                "trigger": dict(spec.trigger),
                "overlap": Overlap(spec.overlap).value,
                "catchup": Catchup(spec.catchup).value,
                "paused": spec.paused,
                "paused_reason": "paused when created" if spec.paused else None,
                "notify": list(spec.notify),
                "source": spec.source,
                "cursor": tx.now,
                "failures": 0,
                "created": tx.now,
                "updated": tx.now,
                "last_event_id": tx.head + 1,
            }
            tx.conn.execute(insert(schedules).values(**values))
            row = schedule_row(tx.conn, sid)
            emit_schedule(tx, ScheduleEventType.SCHEDULE_CREATED, row)
            return row

        return self._apply(_op)

    def update_schedule(self, schedule_id: str, changes: Mapping[str, Any]) -> ScheduleRow:
        """Change a schedule's fields (see CHANGEABLE). A new trigger starts after now."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise ValueError(f"not changeable: {', '.join(sorted(unknown))}")

        def _op(tx: Tx) -> ScheduleRow:
            before = schedule_row(tx.conn, schedule_id)
            values = dict(changes)
            if "name" in values and values["name"] != before.name:
                clash = tx.conn.execute(
                    select(schedules.c.schedule_id).where(schedules.c.name == values["name"])
                ).scalar_one_or_none()
                if clash is not None:
                    raise DuplicateSchedule(str(values["name"]), clash)
            if "trigger" in values and values["trigger"] != before.trigger:
                # Due times of the old trigger that passed are accounted for; the new one
                # starts now (it never fires retroactively).
                values["cursor"] = max(before.cursor, tx.now)
            for key in ("overlap", "catchup"):
                if key in values:
                    values[key] = str(values[key])
            if "notify" in values:
                values["notify"] = list(values["notify"])
            values.update(updated=tx.now, last_event_id=tx.head + 1)
            tx.conn.execute(
                update(schedules).where(schedules.c.schedule_id == schedule_id).values(**values)
            )
            row = schedule_row(tx.conn, schedule_id)
            emit_schedule(tx, ScheduleEventType.SCHEDULE_UPDATED, row, changed=sorted(changes))
            return row

        return self._apply(_op)

    def pause_schedule(self, schedule_id: str, reason: str = "paused by operator") -> ScheduleRow:
        """Pause: due times are recorded `skipped`/`paused` until it is resumed."""

        def _op(tx: Tx) -> ScheduleRow:
            return self._pause(tx, schedule_id, reason)

        return self._apply(_op)

    def _pause(self, tx: Tx, schedule_id: str, reason: str) -> ScheduleRow:
        before = schedule_row(tx.conn, schedule_id)
        if before.paused:
            return before
        tx.conn.execute(
            update(schedules)
            .where(schedules.c.schedule_id == schedule_id)
            .values(paused=True, paused_reason=reason, updated=tx.now, last_event_id=tx.head + 1)
        )
        row = schedule_row(tx.conn, schedule_id)
        emit_schedule(tx, ScheduleEventType.SCHEDULE_PAUSED, row, reason=reason)
        return row

    def resume_schedule(self, schedule_id: str) -> ScheduleRow:
        """Resume a paused schedule from now on: the due times it slept through are not run
        (no flood), and its failure count starts again at 0."""

        def _op(tx: Tx) -> ScheduleRow:
            before = schedule_row(tx.conn, schedule_id)
            if not before.paused:
                return before
            tx.conn.execute(
                update(schedules)
                .where(schedules.c.schedule_id == schedule_id)
                .values(
                    paused=False,
                    paused_reason=None,
                    failures=0,
                    cursor=max(before.cursor, tx.now),
                    updated=tx.now,
                    last_event_id=tx.head + 1,
                )
            )
            row = schedule_row(tx.conn, schedule_id)
            emit_schedule(tx, ScheduleEventType.SCHEDULE_RESUMED, row)
            return row

        return self._apply(_op)

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete the schedule and its tick history (batches it launched stay)."""

        def _op(tx: Tx) -> None:
            schedule_row(tx.conn, schedule_id)
            tx.conn.execute(delete(ticks).where(ticks.c.schedule_id == schedule_id))
            tx.conn.execute(delete(schedules).where(schedules.c.schedule_id == schedule_id))
            emit_schedule(tx, ScheduleEventType.SCHEDULE_DELETED, schedule_id)

        self._apply(_op)

    def advance_cursor(self, schedule_id: str, cursor: float, guard: Fence | None) -> None:
        """Mark every due time up to `cursor` accounted for (fenced by the leader's lease)."""

        def _op(tx: Tx) -> None:
            if guard is not None:
                fence(tx.conn, guard, tx.now)
            tx.conn.execute(
                update(schedules)
                .where(schedules.c.schedule_id == schedule_id, schedules.c.cursor < cursor)
                .values(cursor=cursor)
            )

        self._apply(_op)

    # ------------------------------------------------------------------ reads
    def schedule(self, schedule_id: str) -> ScheduleRow:
        """The schedule by id; raises UnknownSchedule."""
        with self.engine.connect() as conn:
            return schedule_row(conn, schedule_id)

    def find_schedule(self, key: str) -> ScheduleRow:
        """The schedule by id or by name; raises UnknownSchedule."""
        query = select(schedules).where(
            or_(schedules.c.schedule_id == key, schedules.c.name == key)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise UnknownSchedule(key)
        by_id = [r for r in rows if r.schedule_id == key]
        return ScheduleRow.from_row(by_id[0] if by_id else rows[0])

    def schedules(self) -> list[ScheduleRow]:
        """Every schedule, oldest first."""
        query = select(schedules).order_by(schedules.c.created, schedules.c.schedule_id)
        with self.engine.connect() as conn:
            return [ScheduleRow.from_row(row) for row in conn.execute(query)]

    def schedules_version(self) -> tuple[int, float]:
        """(count, newest update): changes when any schedule is created, changed or deleted."""
        query = select(func.count(), func.max(schedules.c.updated))
        with self.engine.connect() as conn:
            count, newest = conn.execute(query).one()
        return int(count), float(newest or 0.0)
