"""The scheduler in-process on an injected clock: what every due time becomes, and why.

Each test moves the clock by hand and runs the leader's passes itself (no thread, no real
waiting for cron); the batches a tick launches really run (on a thread, through the same
code path as `sheetbatch run`) against real sheets and a real store, on both databases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from progress import Store, open_store
from progress.batch_writes import NewJob
from progress.schedule_model import (
    NewSchedule,
    PlannedTick,
    TickReason,
    TickRow,
    TickState,
    tick_batch_id,
)
from sheetbatch.config import Settings
from sheetbatch.scheduler import LEADER_LEASE, Scheduler
from sheetbatch.schedules import ScheduleInput, add_schedule
from tests.support.schedules import SLOW, Clock, CsvTestSheet, quick_settings

START = 1_800_000_000.0  # a whole minute


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[Store]:
    s = open_store(db_url, clock=clock, poll_interval=0.05)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return quick_settings(db_url)


@pytest.fixture
def make_scheduler(store: Store, settings: Settings) -> Iterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []

    def make(**overrides: Any) -> Scheduler:
        s = settings if not overrides else quick_settings(settings.db, **overrides)
        scheduler = Scheduler(store, s, threaded=False)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.stop(10)


def pass_at(scheduler: Scheduler, clock: Clock, when: float) -> list[TickRow]:
    """Move the clock, heartbeat, run one leader pass; the ticks it created."""
    clock.now = when
    scheduler.elect()
    return scheduler.run_pass()


def run_at(scheduler: Scheduler, clock: Clock, when: float) -> list[TickRow]:
    """`pass_at`, then wait for the batches it started."""
    made = pass_at(scheduler, clock, when)
    scheduler.launcher.join(30)
    return made


def schedule(store: Store, settings: Settings, sheet: str, **given: Any) -> str:
    given.setdefault("every", "60s")
    return add_schedule(store, settings, ScheduleInput(sheet=sheet, **given)).schedule_id


def states(store: Store, sid: str) -> list[tuple[str, str | None]]:
    """(state, reason) of every tick, oldest first."""
    return [
        (t.state.value, t.reason.value if t.reason else None)
        for t in store.ticks(sid, limit=10_000)
    ][::-1]


def test_rows_appended_between_ticks_are_processed_by_the_next_tick_and_none_is_redone(
    store: Store, settings: Settings, clock: Clock, tmp_path: Path, make_scheduler: Any
) -> None:
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme", "Beta"])
    sid = schedule(store, settings, sheet.spec)
    scheduler = make_scheduler()
    first = run_at(scheduler, clock, START + 60)
    ids = sheet.job_ids()
    assert sheet.statuses() == {"Acme": "completed", "Beta": "completed"}
    sheet.append("Gamma")
    run_at(scheduler, clock, START + 120)
    assert sheet.statuses()["Gamma"] == "completed"
    assert {k: v for k, v in sheet.job_ids().items() if k != "Gamma"} == ids  # not redone
    run_at(scheduler, clock, START + 180)
    ticks = store.ticks(sid)[::-1]
    assert [(t.state, t.reason, t.rows) for t in ticks] == [
        (TickState.SUCCEEDED, None, 2),
        (TickState.SUCCEEDED, None, 1),
        (TickState.SKIPPED, TickReason.NO_NEW_ROWS, None),
    ]
    assert ticks[0].tick_id == first[0].tick_id
    assert ticks[0].batch_id == tick_batch_id(ticks[0].tick_id)
    assert ticks[2].batch_id is None
    # Exactly one batch per launched tick, and no row in two batches.
    batches = store.batches()
    assert sorted(b["batch_id"] for b in batches) == sorted(t.batch_id for t in ticks if t.batch_id)
    rows = [j["label"] for b in batches for j in store.jobs(batch_id=b["batch_id"])]
    assert sorted(rows) == ["Acme", "Beta", "Gamma"]


@pytest.mark.parametrize("overlap", ["skip", "queue"])
def test_a_tick_due_while_the_previous_run_goes_is_skipped_or_queued(
    store: Store,
    settings: Settings,
    clock: Clock,
    tmp_path: Path,
    make_scheduler: Any,
    monkeypatch: pytest.MonkeyPatch,
    overlap: str,
) -> None:
    monkeypatch.setenv("SHEETBATCH_TEST_PHASE_SECONDS", "0.15")
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    sid = schedule(store, settings, sheet.spec, overlap=overlap, pipeline=SLOW)
    scheduler = make_scheduler()
    (first,) = pass_at(scheduler, clock, START + 60)  # its batch runs (0.6 s) on a thread
    pass_at(scheduler, clock, START + 120)
    pass_at(scheduler, clock, START + 180)
    second, third = store.ticks(sid, limit=2)[::-1]
    running = store.tick(first.tick_id)
    assert running.state is TickState.RUNNING and running.batch_id
    if overlap == "skip":
        assert (second.state, second.reason) == (TickState.SKIPPED, TickReason.OVERLAP)
        assert running.batch_id in (second.detail or "")
    else:
        assert (second.state, second.reason) == (TickState.QUEUED, TickReason.OVERLAP)
    assert (third.state, third.reason) == (TickState.SKIPPED, TickReason.OVERLAP)
    scheduler.launcher.join(30)
    sheet.append("Beta")
    run_at(scheduler, clock, START + 185)  # not due: a reconcile pass
    assert store.tick(first.tick_id).state is TickState.SUCCEEDED
    if overlap == "queue":
        queued = store.tick(second.tick_id)
        assert queued.state is TickState.SUCCEEDED and queued.rows == 1
        assert sheet.statuses() == {"Acme": "completed", "Beta": "completed"}
    else:
        assert sheet.statuses()["Beta"] == ""


@pytest.mark.parametrize(
    ("every", "catchup", "first_pass", "n_ticks", "expected_last"),
    [
        ("60s", "latest", 630, 10, ("succeeded", None)),
        ("60s", "none", 630, 10, ("missed", "missed")),
        ("2h", "latest", 7200 + 5400, 1, ("missed", "catchup_skipped")),
    ],
)
def test_ticks_missed_while_no_scheduler_ran_are_recorded_and_caught_up_once(
    store: Store,
    settings: Settings,
    clock: Clock,
    tmp_path: Path,
    make_scheduler: Any,
    every: str,
    catchup: str,
    first_pass: int,
    n_ticks: int,
    expected_last: tuple[str, str | None],
) -> None:
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    sid = schedule(store, settings, sheet.spec, every=every, catchup=catchup)
    scheduler = make_scheduler(misfire_grace=10)
    run_at(scheduler, clock, START + first_pass)  # the first pass comes long after creation
    got = states(store, sid)
    assert len(got) == n_ticks  # every due time has its row
    assert got[:-1] == [("missed", "missed")] * (n_ticks - 1)
    assert got[-1] == expected_last
    ran = [t for t in store.ticks(sid) if t.batch_id]
    assert len(ran) == (1 if expected_last[0] == "succeeded" else 0)
    if ran:
        assert ran[0].catchup and ran[0].scheduled_for == START + 600
        assert sheet.statuses() == {"Acme": "completed"}
    run_at(scheduler, clock, START + first_pass + 5)  # nothing new is due: nothing happens
    assert len(states(store, sid)) == n_ticks


def test_a_clock_stepping_back_never_repeats_a_tick(
    store: Store, settings: Settings, clock: Clock, tmp_path: Path, make_scheduler: Any
) -> None:
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    sid = schedule(store, settings, sheet.spec)
    scheduler = make_scheduler()
    for minute in range(1, 4):
        run_at(scheduler, clock, START + 60 * minute)
    before = [t.scheduled_for for t in store.ticks(sid)]
    for step in range(0, 3600, 300):  # the clock steps back an hour and crawls forward
        run_at(scheduler, clock, START + 180 - 3600 + step)
    assert [t.scheduled_for for t in store.ticks(sid)] == before
    run_at(scheduler, clock, START + 240)
    due = sorted(t.scheduled_for for t in store.ticks(sid))
    assert due == [START + 60 * m for m in range(1, 5)]


@pytest.mark.parametrize(
    ("zone", "day", "cron", "local"),
    [
        ("America/New_York", "2026-03-08", "30 2 * * *", "2026-03-08T03:00:00-04:00"),
        ("America/New_York", "2026-11-01", "30 1 * * *", "2026-11-01T01:30:00-04:00"),
        ("Europe/Berlin", "2026-03-29", "30 2 * * *", "2026-03-29T03:00:00+02:00"),
        ("Europe/Berlin", "2026-10-25", "30 2 * * *", "2026-10-25T02:30:00+02:00"),
        ("Europe/Berlin", "2026-10-25", "30 1 * * *", "2026-10-25T01:30:00+02:00"),
    ],
)
def test_a_daily_time_on_a_dst_day_runs_exactly_once(
    store: Store,
    settings: Settings,
    clock: Clock,
    tmp_path: Path,
    make_scheduler: Any,
    zone: str,
    day: str,
    cron: str,
    local: str,
) -> None:
    from datetime import datetime

    sheet = CsvTestSheet(tmp_path / "leads.csv", [])
    clock.at(f"{day}T00:00", zone)
    sid = schedule(store, settings, sheet.spec, every=None, cron=cron, timezone=zone)
    scheduler = make_scheduler()
    end = clock.now + 6 * 3600
    t = clock.now
    while t < end:  # a pass every 5 minutes through the night
        t += 300
        run_at(scheduler, clock, t)
    ticks = store.ticks(sid)
    assert len(ticks) == 1
    assert datetime.fromisoformat(local).timestamp() == ticks[0].scheduled_for
    assert (ticks[0].state, ticks[0].reason) == (TickState.SKIPPED, TickReason.NO_NEW_ROWS)


def test_a_paused_schedule_records_paused_ticks_and_resuming_never_floods(
    store: Store, settings: Settings, clock: Clock, tmp_path: Path, make_scheduler: Any
) -> None:
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    sid = schedule(store, settings, sheet.spec)
    scheduler = make_scheduler()
    store.pause_schedule(sid, "maintenance")
    run_at(scheduler, clock, START + 60)
    run_at(scheduler, clock, START + 120)
    assert states(store, sid) == [("skipped", "paused")] * 2
    assert store.ticks(sid)[0].detail == "maintenance"
    clock.now = START + 3 * 3600
    store.resume_schedule(sid)
    run_at(scheduler, clock, START + 3 * 3600 + 30)  # hours later: nothing of them runs
    assert len(store.ticks(sid)) == 2
    assert sheet.statuses() == {"Acme": ""}
    run_at(scheduler, clock, START + 3 * 3600 + 60)
    assert states(store, sid)[-1] == ("succeeded", None)


def test_an_unreachable_sheet_fails_the_tick_with_the_reason_and_pauses_after_n(
    store: Store, clock: Clock, tmp_path: Path, make_scheduler: Any
) -> None:
    settings = quick_settings(store.url, pause_after_failures=2)
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    sid = schedule(store, settings, sheet.spec)
    Path(sheet.spec).unlink()
    scheduler = make_scheduler(pause_after_failures=2)
    run_at(scheduler, clock, START + 60)
    (tick,) = store.ticks(sid)
    assert (tick.state, tick.reason) == (TickState.FAILED, TickReason.SHEET_UNREACHABLE)
    assert "sheet not found" in (tick.detail or "")
    assert not store.schedule(sid).paused
    run_at(scheduler, clock, START + 120)
    paused = store.schedule(sid)
    assert paused.paused and "2 consecutive" in (paused.paused_reason or "")
    run_at(scheduler, clock, START + 180)
    assert states(store, sid)[-1] == ("skipped", "paused")


def test_a_tick_claimed_by_a_scheduler_that_died_before_launching_runs_once(
    store: Store, settings: Settings, clock: Clock, tmp_path: Path, make_scheduler: Any
) -> None:
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    sid = schedule(store, settings, sheet.spec)
    # A scheduler that led, claimed the tick due at +60, and died (kill -9) right after.
    clock.now = START + 61
    dead = store.acquire_lease(LEADER_LEASE, "host:1:dead", 5)
    assert dead is not None
    from progress.schedule_model import Fence

    (claimed,) = store.record_ticks(
        sid,
        [PlannedTick(START + 60, TickState.RUNNING)],
        scheduler="host:1:dead",
        guard=Fence(LEADER_LEASE, "host:1:dead", dead),
        cursor=START + 60,
    )
    scheduler = make_scheduler()
    run_at(scheduler, clock, START + 62)  # the lease has not expired: it cannot lead yet
    assert not scheduler.is_leader and store.tick(claimed.tick_id).state is TickState.RUNNING
    run_at(scheduler, clock, START + 67)  # expired: it leads, finishes the orphan
    run_at(scheduler, clock, START + 68)
    done = store.tick(claimed.tick_id)
    assert done.state is TickState.SUCCEEDED and done.batch_id == tick_batch_id(done.tick_id)
    assert done.scheduler == scheduler.owner and done.epoch == dead + 1
    assert len(store.batches()) == 1
    assert sheet.statuses() == {"Acme": "completed"}


def test_a_tick_whose_batch_was_created_before_its_scheduler_died_gets_no_second_batch(
    store: Store, settings: Settings, clock: Clock, tmp_path: Path, make_scheduler: Any
) -> None:
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    sid = schedule(store, settings, sheet.spec)
    (claimed,) = store.record_ticks(
        sid, [PlannedTick(START + 60, TickState.RUNNING)], scheduler="host:1:dead", guard=None
    )
    # It wrote the row's job id, created the tick's batch (with the tick's key) and died
    # before recording it.
    job = NewJob(row=2, inputs={"Company": "Acme"}, label="Acme")
    Path(sheet.spec).write_text(
        f"Company,Website,Status,Job ID\nAcme,https://acme.test,queued,{job.job_id}\n"
    )
    store.create_batch(
        sheet=sheet.spec,
        pipeline=settings.pipeline,
        phases=["extract"],
        jobs=[job],
        batch_id=tick_batch_id(claimed.tick_id),
        options={"sheet_spec": sheet.spec},
    )
    scheduler = make_scheduler()
    run_at(scheduler, clock, START + 61)
    run_at(scheduler, clock, START + 62)
    done = store.tick(claimed.tick_id)
    assert done.state is TickState.SUCCEEDED
    assert [b["batch_id"] for b in store.batches()] == [tick_batch_id(claimed.tick_id)]
    assert store.job(job.job_id)["status"] == "succeeded"
    assert sheet.statuses() == {"Acme": "completed"}
    assert sheet.job_ids() == {"Acme": job.job_id}


def test_a_stale_leader_records_nothing_after_a_takeover(
    store: Store, settings: Settings, clock: Clock, tmp_path: Path, make_scheduler: Any
) -> None:
    sheet = CsvTestSheet(tmp_path / "leads.csv", [])
    sid = schedule(store, settings, sheet.spec)
    old, new = make_scheduler(), make_scheduler()
    clock.now = START + 1
    assert old.elect() and not new.elect()
    clock.now = START + 61 + settings.scheduler_lease_seconds  # old was paused past its TTL
    assert new.elect()
    assert old.run_pass() == []  # refused by epoch: it learns it no longer leads
    assert not old.is_leader
    made = new.run_pass()
    assert made and all(t.scheduler == new.owner for t in store.ticks(sid))


def test_a_manual_trigger_runs_as_a_tick_through_the_leader(
    store: Store, settings: Settings, clock: Clock, tmp_path: Path, make_scheduler: Any
) -> None:
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    sid = schedule(store, settings, sheet.spec, every="1d")
    clock.now = START + 5
    requested = store.request_run(sid, requested_by="cli test")
    assert store.request_run(sid, requested_by="cli again").tick_id == requested.tick_id
    scheduler = make_scheduler()
    run_at(scheduler, clock, START + 6)
    done = store.tick(requested.tick_id)
    assert done.manual and done.state is TickState.SUCCEEDED
    assert sheet.statuses() == {"Acme": "completed"}


def test_a_schedule_created_by_name_twice_is_refused(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from sheetbatch.schedules import ScheduleError

    sheet = CsvTestSheet(tmp_path / "leads.csv", [])
    schedule(store, settings, sheet.spec, name="daily")
    with pytest.raises(ScheduleError, match="exists already") as caught:
        schedule(store, settings, sheet.spec, name="daily")
    assert caught.value.field == "name"
    assert len(store.schedules()) == 1
    _ = NewSchedule  # the store-level type the library builds
