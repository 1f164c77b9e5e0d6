"""Reading ticks: one, a schedule's history, the active ones, the newest per schedule, counts."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from progress.reads import log_head
from progress.schedule_model import ScheduleRow, TickRow, TickState
from progress.schedule_tables import ticks
from progress.schedules import schedule_row
from progress.ticks import tick_row


class TickReads:
    """The tick reads of the store (a part of `Store`)."""

    engine: Engine
    clock: Callable[[], float]

    def tick(self, tick_id: str) -> TickRow:
        """The tick by id; raises UnknownTick."""
        with self.engine.connect() as conn:
            return tick_row(conn, tick_id)

    def ticks(
        self, schedule_id: str, *, limit: int = 50, before: float | None = None
    ) -> list[TickRow]:
        """The schedule's ticks, newest due time first."""
        query = (
            select(ticks)
            .where(ticks.c.schedule_id == schedule_id)
            .order_by(ticks.c.scheduled_for.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(ticks.c.scheduled_for < before)
        with self.engine.connect() as conn:
            return [TickRow.from_row(row) for row in conn.execute(query)]

    def active_ticks(self, schedule_id: str | None = None) -> list[TickRow]:
        """Running and queued ticks (of one schedule, or all), oldest due time first."""
        query = (
            select(ticks)
            .where(ticks.c.state.in_([TickState.RUNNING.value, TickState.QUEUED.value]))
            .order_by(ticks.c.scheduled_for)
        )
        if schedule_id is not None:
            query = query.where(ticks.c.schedule_id == schedule_id)
        with self.engine.connect() as conn:
            return [TickRow.from_row(row) for row in conn.execute(query)]

    def last_ticks(self) -> dict[str, TickRow]:
        """Each schedule's newest tick, by schedule id."""
        newest = (
            select(ticks.c.schedule_id, func.max(ticks.c.scheduled_for).label("due"))
            .group_by(ticks.c.schedule_id)
            .subquery()
        )
        query = select(ticks).join(
            newest,
            (ticks.c.schedule_id == newest.c.schedule_id) & (ticks.c.scheduled_for == newest.c.due),
        )
        with self.engine.connect() as conn:
            return {row.schedule_id: TickRow.from_row(row) for row in conn.execute(query)}

    def tick_counts(self) -> dict[tuple[str, str], int]:
        """How many ticks there are by (state, reason or "")."""
        query = select(ticks.c.state, ticks.c.reason, func.count()).group_by(
            ticks.c.state, ticks.c.reason
        )
        with self.engine.connect() as conn:
            return {(str(s), str(r or "")): int(n) for s, r, n in conn.execute(query)}

    def schedule_with_ticks(
        self, schedule_id: str, limit: int = 50
    ) -> tuple[int, ScheduleRow, list[TickRow]]:
        """(log cursor, schedule, newest ticks) read in one transaction (a stream's snapshot)."""
        conn = self.engine.connect()
        try:
            if conn.dialect.name != "sqlite":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                cursor = log_head(conn)
                schedule = schedule_row(conn, schedule_id)
                rows = conn.execute(
                    select(ticks)
                    .where(ticks.c.schedule_id == schedule_id)
                    .order_by(ticks.c.scheduled_for.desc())
                    .limit(limit)
                ).all()
            return cursor, schedule, [TickRow.from_row(r) for r in rows]
        finally:
            conn.close()
