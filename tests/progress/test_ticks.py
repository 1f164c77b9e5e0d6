"""Schedules and ticks in the store: one tick per due time, outcomes tied to the batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select

from progress import Store, open_store
from progress import schema as t
from progress.batch_writes import NewJob
from progress.errors import DuplicateSchedule, IllegalTickTransition
from progress.schedule_model import (
    Fence,
    NewSchedule,
    PlannedTick,
    TickReason,
    TickState,
    tick_batch_id,
)
from tests.progress.test_leases import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clocked(db_url: str, clock: Clock) -> Iterator[Store]:
    store = open_store(db_url, clock=clock, poll_interval=0.05)
    try:
        yield store
    finally:
        store.close()


def _schedule(store: Store, name: str = "daily") -> str:
    spec = NewSchedule(
        name=name, sheet="s.csv", pipeline="company", trigger={"kind": "interval", "seconds": 60}
    )
    return store.create_schedule(spec).schedule_id


def test_a_due_time_is_claimed_once_whoever_tries(clocked: Store, clock: Clock) -> None:
    sid = _schedule(clocked)
    due = [PlannedTick(clock.now + 60, TickState.RUNNING)]
    first = clocked.record_ticks(sid, due, scheduler="a", guard=None)
    second = clocked.record_ticks(sid, due, scheduler="b", guard=None)
    assert len(first) == 1 and second == []
    assert [tk.scheduler for tk in clocked.ticks(sid)] == ["a"]


def test_names_are_unique(clocked: Store) -> None:
    sid = _schedule(clocked)
    with pytest.raises(DuplicateSchedule, match=sid):
        _schedule(clocked)


def test_a_ticks_batch_finishing_finishes_the_tick_in_the_same_transaction(
    clocked: Store, clock: Clock
) -> None:
    sid = _schedule(clocked)
    (tick,) = clocked.record_ticks(
        sid, [PlannedTick(clock.now, TickState.RUNNING)], scheduler="a", guard=None
    )
    jobs = [NewJob(row=2, inputs={}, label="a"), NewJob(row=3, inputs={}, label="b")]
    batch_id = clocked.create_batch(
        sheet="s.csv", pipeline="p", phases=["x"], jobs=jobs, batch_id=tick_batch_id(tick.tick_id)
    )
    clock.now += 2
    launched = clocked.launch_tick(tick.tick_id, batch_id, rows=2, guard=None)
    assert launched.state is TickState.RUNNING and launched.batch_id == batch_id
    assert launched.lag == 0.0  # the batch was created at the due time
    for job in jobs:
        clocked.start_job(job.job_id, "w", 30)
    clocked.succeed_job(jobs[0].job_id, {})
    assert clocked.tick(tick.tick_id).state is TickState.RUNNING
    clocked.fail_job(jobs[1].job_id, phase="x", reason="boom")
    done = clocked.tick(tick.tick_id)
    assert done.state is TickState.FAILED and done.reason is TickReason.ROWS_FAILED
    assert done.detail == "2 rows: 1 succeeded, 1 failed"
    finished = [e for e in clocked.events_after(0, batch_id=sid) if e["type"] == "tick_finished"]
    batch_end = [e for e in clocked.events_after(0, batch_id=batch_id)][-1]
    assert batch_end["type"] == "batch_finished"
    assert finished[-1]["id"] == batch_end["id"] + 1  # the same commit, right after it


def test_a_batch_that_finished_before_its_launch_was_recorded_finishes_the_tick(
    clocked: Store, clock: Clock
) -> None:
    sid = _schedule(clocked)
    (tick,) = clocked.record_ticks(
        sid, [PlannedTick(clock.now, TickState.RUNNING)], scheduler="a", guard=None
    )
    batch_id = clocked.create_batch(sheet="s.csv", pipeline="p", phases=["x"], jobs=[])
    done = clocked.launch_tick(tick.tick_id, batch_id, rows=0, guard=None)
    assert done.state is TickState.SUCCEEDED
    with pytest.raises(IllegalTickTransition):
        clocked.finish_tick(tick.tick_id, TickState.FAILED, TickReason.ERROR, guard=None)


def test_consecutive_failures_pause_the_schedule_and_say_why(clocked: Store, clock: Clock) -> None:
    sid = _schedule(clocked)
    for i in range(3):
        clock.now += 60
        (tick,) = clocked.record_ticks(
            sid, [PlannedTick(clock.now, TickState.RUNNING)], scheduler="a", guard=None
        )
        clocked.finish_tick(
            tick.tick_id,
            TickState.FAILED,
            TickReason.SHEET_UNREACHABLE,
            f"503 number {i}",
            guard=None,
            pause_after=2,
        )
        if i == 0:
            assert not clocked.schedule(sid).paused
    schedule = clocked.schedule(sid)
    assert schedule.paused and schedule.failures == 3
    assert schedule.paused_reason is not None
    assert (
        "after 2 consecutive" in schedule.paused_reason and "503 number 1" in schedule.paused_reason
    )
    paused = [e for e in clocked.events_after(0, batch_id=sid) if e["type"] == "schedule_paused"]
    assert len(paused) == 1


def test_a_success_resets_the_failure_count(clocked: Store, clock: Clock) -> None:
    sid = _schedule(clocked)
    for state, reason in [
        (TickState.FAILED, TickReason.ERROR),
        (TickState.SKIPPED, TickReason.NO_NEW_ROWS),
        (TickState.FAILED, TickReason.ERROR),
    ]:
        clock.now += 60
        (tick,) = clocked.record_ticks(
            sid, [PlannedTick(clock.now, TickState.RUNNING)], scheduler="a", guard=None
        )
        clocked.finish_tick(tick.tick_id, state, reason, guard=None, pause_after=2)
    assert not clocked.schedule(sid).paused
    assert clocked.schedule(sid).failures == 1


def test_resume_never_floods_and_starts_from_now(clocked: Store, clock: Clock) -> None:
    sid = _schedule(clocked)
    clocked.pause_schedule(sid)
    clock.now += 3600
    resumed = clocked.resume_schedule(sid)
    assert not resumed.paused and resumed.cursor == clock.now


def test_a_fenced_queue_start_and_adoption(clocked: Store, clock: Clock) -> None:
    sid = _schedule(clocked)
    guard = Fence("leader", "a", clocked.acquire_lease("leader", "a", 30) or 0)
    (tick,) = clocked.record_ticks(
        sid,
        [PlannedTick(clock.now, TickState.QUEUED, TickReason.OVERLAP)],
        scheduler="a",
        guard=guard,
    )
    started = clocked.start_queued_tick(tick.tick_id, scheduler="a", guard=guard)
    assert started.state is TickState.RUNNING and started.reason is None
    clock.now += 31
    other = Fence("leader", "b", clocked.acquire_lease("leader", "b", 30) or 0)
    adopted = clocked.adopt_tick(tick.tick_id, scheduler="b", guard=other)
    assert adopted.scheduler == "b" and adopted.epoch == other.epoch


def test_a_version_1_database_is_upgraded_with_the_scheduling_and_session_tables(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    engine = create_engine(url)
    v1 = [t.meta, t.log_head, t.events, t.batches, t.jobs, t.cursors]
    with engine.begin() as conn:
        for table in v1:
            table.create(conn)
        conn.execute(t.meta.insert().values(key="schema_version", value="1"))
        conn.execute(t.log_head.insert().values(id=1, last_id=0))
    engine.dispose()
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            version = conn.execute(
                select(t.meta.c.value).where(t.meta.c.key == "schema_version")
            ).scalar_one()
        assert {"sb_schedules", "sb_ticks", "sb_leases", "sb_sessions"} <= names
        assert version == str(t.SCHEMA_VERSION)
        assert _schedule(store)
    finally:
        store.close()


def test_a_batch_carrying_a_ticks_key_finishes_it_even_when_its_launch_was_never_recorded(
    clocked: Store, clock: Clock
) -> None:
    sid = _schedule(clocked)
    (tick,) = clocked.record_ticks(
        sid, [PlannedTick(clock.now, TickState.RUNNING)], scheduler="a", guard=None
    )
    job = NewJob(row=2, inputs={}, label="a")
    clocked.create_batch(
        sheet="s.csv", pipeline="p", phases=["x"], jobs=[job], batch_id=tick_batch_id(tick.tick_id)
    )
    clocked.start_job(job.job_id, "w", 30)
    clocked.succeed_job(job.job_id, {})
    done = clocked.tick(tick.tick_id)
    assert done.state is TickState.SUCCEEDED and done.batch_id == tick_batch_id(tick.tick_id)
    # The scheduler, alive again, records the launch afterwards: nothing changes.
    again = clocked.launch_tick(tick.tick_id, tick_batch_id(tick.tick_id), rows=1, guard=None)
    assert again == done
