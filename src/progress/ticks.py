"""Ticks in the store: claimed once per due time, launched, finished; each move an event.

A tick is claimed by inserting its row: the unique (schedule_id, scheduled_for) refuses a
second claim, whoever tries. The leader's writes are fenced by its lease epoch. A tick's
batch finishing finishes the tick in the same transaction (`finish_ticks_of_batch`, called
by the batch's last transition), so a tick's outcome exists exactly when its batch's does.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from progress import schema as t
from progress.commit import Tx
from progress.errors import IllegalTickTransition, UnknownTick
from progress.leases import fence
from progress.notify_model import Targets
from progress.outbox import record_missed, record_tick_failure
from progress.schedule_model import (
    COUNTED_FAILURES,
    Fence,
    PlannedTick,
    TickReason,
    TickRow,
    TickState,
)
from progress.schedule_tables import schedules, ticks
from progress.schedules import emit_schedule, schedule_row
from progress.statements import BatchCounts
from progress.status import BatchStatus, ScheduleEventType

log = logging.getLogger(__name__)

R = TypeVar("R")


def new_tick_id() -> str:
    """A unique, URL-safe tick id."""
    return "t-" + secrets.token_hex(8)


def tick_row(conn: Connection, tick_id: str) -> TickRow:
    """The tick as `conn` sees it; raises UnknownTick."""
    row = conn.execute(select(ticks).where(ticks.c.tick_id == tick_id)).one_or_none()
    if row is None:
        raise UnknownTick(tick_id)
    return TickRow.from_row(row)


def _emit_tick(tx: Tx, kind: ScheduleEventType, tick: TickRow) -> int:
    data = {"schedule_id": tick.schedule_id, "tick_id": tick.tick_id, "tick": tick.to_json()}
    return tx.emit(kind, tick.schedule_id, None, data)


def _insert_ignoring_duplicates(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert a tick unless its (schedule_id, scheduled_for) exists; whether it was inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ticks).values(**values).on_conflict_do_nothing().returning(ticks.c.tick_id)
    )
    # RETURNING, not rowcount: psycopg reports a row count for a conflict that inserted none.
    return conn.execute(statement).scalar_one_or_none() is not None


def _finish(
    tx: Tx,
    tick: TickRow,
    state: TickState,
    reason: TickReason | None,
    detail: str | None,
    *,
    pause_after: int = 0,
    notify: Targets | None = None,
) -> TickRow:
    """End a tick (with the schedule's failure count and self-pause in the same transaction).

    A tick that could not run (`COUNTED_FAILURES`) records its `schedule.tick_failed`
    notifications here too: to the schedule's URLs and `notify`'s (the configured ones).
    """
    if tick.state.terminal:
        raise IllegalTickTransition(tick.tick_id, tick.state.value, state.value)
    values: dict[str, Any] = {
        "state": state.value,
        "reason": reason.value if reason else None,
        "detail": detail,
        "finished": tx.now,
        "updated": tx.now,
    }
    if tick.lag is None:
        values["lag"] = max(0.0, tx.now - tick.scheduled_for)
    tx.conn.execute(update(ticks).where(ticks.c.tick_id == tick.tick_id).values(**values))
    done = tick_row(tx.conn, tick.tick_id)
    _emit_tick(tx, ScheduleEventType.TICK_FINISHED, done)
    _count_failure(tx, done, pause_after)
    if done.state is TickState.FAILED and done.reason in COUNTED_FAILURES:
        record_tick_failure(tx, done, notify)
    return done


def _count_failure(tx: Tx, tick: TickRow, pause_after: int) -> None:
    found = tx.conn.execute(
        select(schedules.c.failures, schedules.c.paused).where(
            schedules.c.schedule_id == tick.schedule_id
        )
    ).one_or_none()
    if found is None or (
        tick.state in (TickState.SKIPPED, TickState.MISSED)
        and (tick.reason != TickReason.NO_NEW_ROWS)
    ):
        return  # skipped for overlap/paused, or missed: says nothing about the sheet
    failed = tick.state is TickState.FAILED and tick.reason in COUNTED_FAILURES
    failures = int(found.failures or 0) + 1 if failed else 0
    if failures == int(found.failures or 0):
        return
    tx.conn.execute(
        update(schedules)
        .where(schedules.c.schedule_id == tick.schedule_id)
        .values(failures=failures)
    )
    if failed and pause_after > 0 and failures >= pause_after and not found.paused:
        reason = (
            f"paused after {failures} consecutive failed ticks "
            f"(last: {tick.reason.value if tick.reason else 'error'}: {tick.detail or ''})"
        ).strip()
        tx.conn.execute(
            update(schedules)
            .where(schedules.c.schedule_id == tick.schedule_id)
            .values(paused=True, paused_reason=reason, updated=tx.now, last_event_id=tx.head + 1)
        )
        row = schedule_row(tx.conn, tick.schedule_id)
        emit_schedule(tx, ScheduleEventType.SCHEDULE_PAUSED, row, reason=reason)
        log.warning("schedule %s: %s", tick.schedule_id, reason)


def finish_ticks_of_batch(tx: Tx, batch_id: str, status: str, counts: BatchCounts) -> None:
    """Finish the running tick whose batch just finished (called in that transaction)."""
    # Also the tick whose key this batch carries, should its launch not be recorded yet (its
    # scheduler lost the lease, or died, right after creating the batch).
    keyed = batch_id[2:] if batch_id.startswith("b-t-") else None
    found = tx.conn.execute(
        select(ticks).where(
            or_(ticks.c.batch_id == batch_id, ticks.c.tick_id == keyed),
            ticks.c.state == TickState.RUNNING.value,
        )
    ).all()
    for row in found:
        tick = TickRow.from_row(row)
        if tick.batch_id is None:
            tx.conn.execute(
                update(ticks).where(ticks.c.tick_id == tick.tick_id).values(batch_id=batch_id)
            )
            tick = tick_row(tx.conn, tick.tick_id)
        state, reason, detail = batch_outcome(status, counts)
        _finish(tx, tick, state, reason, detail)


def batch_outcome(status: str, counts: BatchCounts) -> tuple[TickState, TickReason | None, str]:
    """What a finished batch makes of its tick: succeeded, or failed with why."""
    rows = "1 row" if counts.total == 1 else f"{counts.total} rows"
    detail = f"{rows}: {counts.n_succeeded} succeeded, {counts.n_failed} failed" + (
        f", {counts.n_cancelled} cancelled" if counts.n_cancelled else ""
    )
    if BatchStatus(status) is BatchStatus.CANCELLED:
        return TickState.FAILED, TickReason.CANCELLED, detail
    if counts.n_failed or counts.n_cancelled:
        return TickState.FAILED, TickReason.ROWS_FAILED, detail
    return TickState.SUCCEEDED, None, detail


def _batch_counts(conn: Connection, batch_id: str) -> tuple[str, BatchCounts, float] | None:
    row = conn.execute(select(t.batches).where(t.batches.c.batch_id == batch_id)).one_or_none()
    if row is None:
        return None
    counts = BatchCounts(
        row.status,
        row.total,
        row.n_queued,
        row.n_running,
        row.n_succeeded,
        row.n_failed,
        row.n_cancelled,
        bool(row.cancel_requested),
    )
    return str(row.status), counts, float(row.created)


class TickOps:
    """The tick writes and reads of the store (a part of `Store`)."""

    engine: Engine
    clock: Callable[[], float]

    def _apply(self, op: Callable[[Tx], R]) -> R:
        raise NotImplementedError  # JobTransitions provides it

    def active_ticks(self, schedule_id: str | None = None) -> list[TickRow]:
        raise NotImplementedError  # TickReads provides it

    # ------------------------------------------------------------------ writes
    def record_ticks(
        self,
        schedule_id: str,
        planned: Sequence[PlannedTick],
        *,
        scheduler: str,
        guard: Fence | None,
        cursor: float | None = None,
        notify: Targets | None = None,
    ) -> list[TickRow]:
        """Claim a tick row for each planned due time and move the schedule's cursor, in one
        transaction (fenced by `guard`). Returns the ticks this call created; a due time that
        already has its tick is left alone (someone claimed it before). Due times recorded
        `missed` make one `schedule.missed` notification (to the schedule's URLs and
        `notify`'s)."""

        def _op(tx: Tx) -> list[TickRow]:
            if guard is not None:
                fence(tx.conn, guard, tx.now)
            schedule = schedule_row(tx.conn, schedule_id)
            created: list[TickRow] = []
            for plan in planned:
                tick_id = new_tick_id()
                state = TickState(plan.state)
                values = {
                    "tick_id": tick_id,
                    "schedule_id": schedule_id,
                    "scheduled_for": plan.scheduled_for,
                    "state": state.value,
                    "reason": plan.reason.value if plan.reason else None,
                    "detail": plan.detail,
                    "manual": plan.manual,
                    "catchup": plan.catchup,
                    "started": tx.now if not state.terminal else None,
                    "finished": tx.now if state.terminal else None,
                    "lag": max(0.0, tx.now - plan.scheduled_for) if state.terminal else None,
                    "scheduler": scheduler,
                    "epoch": guard.epoch if guard else None,
                    "updated": tx.now,
                }
                if not _insert_ignoring_duplicates(tx.conn, values):
                    continue
                tick = tick_row(tx.conn, tick_id)
                kind = (
                    ScheduleEventType.TICK_FINISHED
                    if state.terminal
                    else ScheduleEventType.TICK_STARTED
                )
                _emit_tick(tx, kind, tick)
                created.append(tick)
            missed = [tick for tick in created if tick.state is TickState.MISSED]
            record_missed(tx, schedule_id, missed, notify)
            if cursor is not None and cursor > schedule.cursor:
                tx.conn.execute(
                    update(schedules)
                    .where(schedules.c.schedule_id == schedule_id)
                    .values(cursor=cursor)
                )
            return created

        return self._apply(_op)

    def request_run(self, schedule_id: str, *, requested_by: str) -> TickRow:
        """A tick for "run now" (`schedule trigger`): queued, due now, started by the leader
        as soon as no other run of the schedule goes. When a run already waits, that tick."""
        for attempt in range(5):
            waiting = [t for t in self.active_ticks(schedule_id) if t.state is TickState.QUEUED]
            if waiting:
                return waiting[0]
            now = round(self.clock(), 3) + attempt / 1000
            made = self.record_ticks(
                schedule_id,
                [
                    PlannedTick(
                        now, TickState.QUEUED, None, f"requested by {requested_by}", manual=True
                    )
                ],
                scheduler=requested_by,
                guard=None,
            )
            if made:
                return made[0]
        raise IllegalTickTransition(schedule_id, "requested", "requested again")

    def launch_tick(
        self, tick_id: str, batch_id: str, *, rows: int, guard: Fence | None
    ) -> TickRow:
        """Record the batch a running tick launched; finishes the tick at once when that
        batch has already finished (a resumed batch, or one with nothing left)."""

        def _op(tx: Tx) -> TickRow:
            if guard is not None:
                fence(tx.conn, guard, tx.now)
            tick = tick_row(tx.conn, tick_id)
            if tick.state.terminal and tick.batch_id == batch_id:
                return tick  # its batch already finished it
            if tick.state is not TickState.RUNNING:
                raise IllegalTickTransition(tick_id, tick.state.value, "launched")
            batch = _batch_counts(tx.conn, batch_id)
            created = batch[2] if batch is not None else tx.now
            tx.conn.execute(
                update(ticks)
                .where(ticks.c.tick_id == tick_id)
                .values(
                    batch_id=batch_id,
                    rows=rows,
                    lag=max(0.0, created - tick.scheduled_for),
                    updated=tx.now,
                )
            )
            launched = tick_row(tx.conn, tick_id)
            _emit_tick(tx, ScheduleEventType.TICK_LAUNCHED, launched)
            if batch is not None and BatchStatus(batch[0]) is not BatchStatus.RUNNING:
                state, reason, detail = batch_outcome(batch[0], batch[1])
                return _finish(tx, launched, state, reason, detail)
            return launched

        return self._apply(_op)

    def finish_tick(
        self,
        tick_id: str,
        state: TickState,
        reason: TickReason | None,
        detail: str | None = None,
        *,
        guard: Fence | None,
        pause_after: int = 0,
        notify: Targets | None = None,
    ) -> TickRow:
        """End a running or queued tick (skipped, failed...); counts towards the schedule's
        self-pause after `pause_after` consecutive failures (0: never). A failure to run is
        told to the schedule's URLs and `notify`'s (the configured ones)."""
        if not TickState(state).terminal:
            raise ValueError(f"{state} is not an end state")

        def _op(tx: Tx) -> TickRow:
            if guard is not None:
                fence(tx.conn, guard, tx.now)
            return _finish(
                tx,
                tick_row(tx.conn, tick_id),
                state,
                reason,
                detail,
                pause_after=pause_after,
                notify=notify,
            )

        return self._apply(_op)

    def start_queued_tick(self, tick_id: str, *, scheduler: str, guard: Fence | None) -> TickRow:
        """Move a queued tick to running (its schedule's previous run ended)."""

        def _op(tx: Tx) -> TickRow:
            if guard is not None:
                fence(tx.conn, guard, tx.now)
            tick = tick_row(tx.conn, tick_id)
            if tick.state is not TickState.QUEUED:
                raise IllegalTickTransition(tick_id, tick.state.value, TickState.RUNNING.value)
            tx.conn.execute(
                update(ticks)
                .where(ticks.c.tick_id == tick_id)
                .values(
                    state=TickState.RUNNING.value,
                    reason=None,
                    detail=None,
                    scheduler=scheduler,
                    epoch=guard.epoch if guard else tick.epoch,
                    started=tx.now,
                    updated=tx.now,
                )
            )
            started = tick_row(tx.conn, tick_id)
            _emit_tick(tx, ScheduleEventType.TICK_STARTED, started)
            return started

        return self._apply(_op)

    def adopt_tick(self, tick_id: str, *, scheduler: str, guard: Fence) -> TickRow:
        """Take over a running tick whose scheduler died (it finishes the tick)."""

        def _op(tx: Tx) -> TickRow:
            fence(tx.conn, guard, tx.now)
            tick = tick_row(tx.conn, tick_id)
            if tick.state is not TickState.RUNNING:
                raise IllegalTickTransition(tick_id, tick.state.value, "adopted")
            tx.conn.execute(
                update(ticks)
                .where(ticks.c.tick_id == tick_id)
                .values(scheduler=scheduler, epoch=guard.epoch, updated=tx.now)
            )
            return tick_row(tx.conn, tick_id)

        return self._apply(_op)
