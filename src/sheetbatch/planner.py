"""Deciding what each due time of a schedule becomes: pure, given the schedule and `now`.

`plan_ticks(schedule, trigger, now, active, policy)` looks at the due times after the
schedule's cursor up to `now` and says, for each, which tick row to record:

- on time (at most `grace` seconds late): run it (when several are, only the newest: the
  older ones are `missed`, coalesced into it), unless the schedule's previous run still
  goes: then `skipped`/`overlap` (policy `skip`) or `queued`/`overlap` (policy `queue`, at
  most one waiting run; a second is `skipped`);
- later than that (no scheduler ran then): `missed`; with catch-up `latest` and no on-time
  due time after them, the newest missed one runs instead when it is within the catch-up
  window, or is recorded `missed`/`catchup_skipped` when it is older;
- while paused: `skipped`/`paused`.

The cursor moves to the newest due time considered: a clock that steps back never finds a
due time again, and a restarted scheduler starts where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from progress.schedule_model import (
    Catchup,
    Overlap,
    PlannedTick,
    ScheduleRow,
    TickReason,
    TickRow,
    TickState,
)
from progress.snapshots import iso
from sheetbatch.timetable import Trigger, fire_times, format_duration

_THIS_PASS = "(planned in this pass)"


@dataclass(frozen=True)
class PlanPolicy:
    """The scheduler's settings the plan depends on (seconds)."""

    grace: float = 60.0
    catchup_window: float = 3600.0
    max_ticks: int = 1000
    lookback: float = 7 * 86400.0


@dataclass(frozen=True)
class Plan:
    """The ticks to record for one schedule and the cursor after them."""

    ticks: list[PlannedTick]
    cursor: float
    dropped: int = 0  # due times older than the lookback or the tick limit: not recorded


def plan_ticks(
    schedule: ScheduleRow,
    trigger: Trigger,
    now: float,
    active: Sequence[TickRow],
    policy: PlanPolicy,
) -> Plan:
    """The plan for `schedule` at `now`; `active`: its running and queued ticks."""
    start = max(schedule.cursor, now - policy.lookback)
    times = list(fire_times(trigger, start, now, limit=policy.max_ticks * 50))
    dropped = 0
    if len(times) > policy.max_ticks:
        dropped = len(times) - policy.max_ticks
        times = times[-policy.max_ticks :]
    if start > schedule.cursor and trigger.next_after(schedule.cursor) is not None:
        first = trigger.next_after(schedule.cursor)
        if first is not None and first < start:
            dropped += 1  # at least one; counting them all could take as long as the outage
    if not times:
        return Plan([], schedule.cursor, dropped)
    cursor = times[-1]
    if schedule.paused:
        reason = schedule.paused_reason or "paused"
        ticks = [PlannedTick(t, TickState.SKIPPED, TickReason.PAUSED, reason) for t in times]
        return Plan(ticks, cursor, dropped)
    late = [t for t in times if now - t > policy.grace]
    on_time = [t for t in times if now - t <= policy.grace]
    planned = [
        PlannedTick(t, TickState.MISSED, TickReason.MISSED, "no scheduler was running")
        for t in late
    ]
    if len(on_time) > 1:
        # Several due times at once: the scheduler was late for the older ones (it started,
        # or took over, after them). One run covers them all, as the newest.
        covering = iso(on_time[-1])
        planned += [
            PlannedTick(
                t, TickState.MISSED, TickReason.MISSED, f"coalesced into the run due {covering}"
            )
            for t in on_time[:-1]
        ]
        on_time = on_time[-1:]
    if late and not on_time and schedule.catchup is Catchup.LATEST:
        newest = late[-1]
        if now - newest <= policy.catchup_window:
            planned[-1] = PlannedTick(newest, TickState.RUNNING, catchup=True)
        else:
            planned[-1] = PlannedTick(
                newest,
                TickState.MISSED,
                TickReason.CATCHUP_SKIPPED,
                f"older than the catch-up window ({format_duration(policy.catchup_window)})",
            )
    running = [a for a in active if a.state is TickState.RUNNING]
    queued = [a for a in active if a.state is TickState.QUEUED]
    out: list[PlannedTick] = []
    for tick in [*planned, *(PlannedTick(t, TickState.RUNNING) for t in on_time)]:
        if tick.state is not TickState.RUNNING:
            out.append(tick)
            continue
        if not running:
            out.append(tick)
            running.append(_placeholder(tick))
            continue
        busy = running[0]
        if busy.tick_id == _THIS_PASS:
            what = f"the run due {_when(busy)}"
        else:
            what = f"batch {busy.batch_id}" if busy.batch_id else f"tick {busy.tick_id}"
        if schedule.overlap is Overlap.QUEUE and not queued:
            out.append(_replace(tick, TickState.QUEUED, TickReason.OVERLAP, f"waiting for {what}"))
            queued.append(_placeholder(tick))
        else:
            detail = f"{what} still running" + (
                f"; a run already waits (due {_when(queued[0])})" if queued else ""
            )
            out.append(_replace(tick, TickState.SKIPPED, TickReason.OVERLAP, detail))
    return Plan(out, cursor, dropped)


def _replace(tick: PlannedTick, state: TickState, reason: TickReason, detail: str) -> PlannedTick:
    return PlannedTick(tick.scheduled_for, state, reason, detail, tick.catchup, tick.manual)


def _placeholder(tick: PlannedTick) -> TickRow:
    """A tick planned in this pass, standing in for the row it will become."""
    return TickRow(
        tick_id=_THIS_PASS,
        schedule_id="",
        scheduled_for=tick.scheduled_for,
        state=tick.state if tick.state is TickState.QUEUED else TickState.RUNNING,
        reason=None,
        detail=None,
        manual=False,
        catchup=tick.catchup,
        started=None,
        finished=None,
        lag=None,
        batch_id=None,
        rows=None,
        scheduler="",
        epoch=None,
        updated=0.0,
    )


def _when(tick: TickRow) -> str:
    return iso(tick.scheduled_for) or "?"
