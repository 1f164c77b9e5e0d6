"""Schedules tell their outcomes: a tick that could not run makes `schedule.tick_failed`,
due times missed while no scheduler ran make one `schedule.missed`, and a tick's batch
tells its end with the schedule's and tick's ids, to the schedule's `--notify` URLs and
`[notify] urls`. The scheduler runs in-process on a hand-moved clock; the receiver is real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from progress import Store, open_store
from progress.notify_model import NotifyState
from sheetbatch.notifier import notifier_for
from sheetbatch.scheduler import Scheduler
from sheetbatch.schedules import ScheduleError, ScheduleInput, add_schedule
from tests.support.receiver import Receiver
from tests.support.schedules import Clock, CsvTestSheet, quick_settings

START = 1_800_000_000.0


@pytest.fixture
def hook() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def store(sqlite_db: str, clock: Clock) -> Iterator[Store]:
    s = open_store(sqlite_db, clock=clock, poll_interval=0.05)
    try:
        yield s
    finally:
        s.close()


def _pass(scheduler: Scheduler, clock: Clock, when: float) -> None:
    clock.now = when
    scheduler.elect()
    scheduler.run_pass()
    scheduler.launcher.join(30)


def test_an_unreachable_sheet_tells_schedule_tick_failed_to_the_schedules_url(
    store: Store, clock: Clock, tmp_path: Path, hook: Receiver
) -> None:
    other = Receiver()  # [notify] urls: told too
    settings = quick_settings(
        store.url, allow_hosts=(hook.allow, other.allow), notify_urls=(other.url,)
    )
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    made = add_schedule(
        store, settings, ScheduleInput(sheet=sheet.spec, every="60s", notify=(hook.url,))
    )
    Path(sheet.spec).unlink()
    scheduler = Scheduler(store, settings, threaded=False)
    try:
        _pass(scheduler, clock, START + 60)
        (tick,) = store.ticks(made.schedule_id)
        found = store.notifications()
        assert {(d.type, d.url) for d in found} == {
            ("schedule.tick_failed", hook.url),
            ("schedule.tick_failed", other.url),
        }
        sender = notifier_for(store, settings, clock=clock)
        outcome = sender.drain()
    finally:
        scheduler.stop(10)
        other.close()
    assert set(outcome.values()) == {NotifyState.DELIVERED}
    body = hook.requests[0].json()
    assert body["type"] == "schedule.tick_failed"
    assert body["data"]["tick_id"] == tick.tick_id
    assert body["data"]["schedule_id"] == made.schedule_id
    assert body["data"]["reason"] == "sheet_unreachable"
    assert "sheet not found" in body["data"]["detail"]


def test_missed_due_times_make_one_schedule_missed_and_a_ticks_batch_tells_its_end(
    store: Store, clock: Clock, tmp_path: Path, hook: Receiver
) -> None:
    settings = quick_settings(store.url, allow_hosts=(hook.allow,), misfire_grace=10)
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    made = add_schedule(
        store, settings, ScheduleInput(sheet=sheet.spec, every="60s", notify=(hook.url,))
    )
    scheduler = Scheduler(store, settings, threaded=False)
    try:
        _pass(scheduler, clock, START + 630)  # 9 due times missed, the latest caught up
    finally:
        scheduler.stop(10)
    by_type = {d.type: d for d in store.notifications()}
    assert set(by_type) == {"schedule.missed", "batch.completed"}
    missed = by_type["schedule.missed"].data
    assert missed["missed"] == 9 and missed["schedule_id"] == made.schedule_id
    ran = [t for t in store.ticks(made.schedule_id) if t.batch_id]
    (tick,) = ran
    finished = by_type["batch.completed"]
    assert finished.batch_id == tick.batch_id
    assert (finished.data["schedule_id"], finished.data["tick_id"]) == (
        made.schedule_id,
        tick.tick_id,
    )


def test_a_schedules_webhook_on_a_private_address_is_refused_unless_allowed(
    store: Store, tmp_path: Path
) -> None:
    settings = quick_settings(store.url)
    sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme"])
    with pytest.raises(ScheduleError, match=r"blocked private address 10\.0\.0\.7"):
        add_schedule(
            store,
            settings,
            ScheduleInput(sheet=sheet.spec, every="60s", notify=("http://10.0.0.7/hook",)),
        )
    assert store.schedules() == []
