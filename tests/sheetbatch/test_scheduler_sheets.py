"""Ticks on every backend: CSV, XLSX and Google Sheets (the stand-in, spoken to by gspread).

Rows appended between ticks are taken by the next tick; a Google sheet with nothing new
costs one read request per tick; a Google sheet that cannot be read (404, 403, 503) fails the
tick `sheet_unreachable` with the reason and the schedule goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gsheets_standin import Fault, StandIn
from gsheets_standin._auth import ServiceAccountKey
from progress import Store, open_store
from progress.schedule_model import TickReason, TickState
from sheetbatch.config import Settings
from sheetbatch.scheduler import Scheduler
from sheetbatch.schedules import ScheduleInput, add_schedule
from tests.support.google import *  # noqa: F403  (the stand-in's pytest fixtures)
from tests.support.schedules import (
    Clock,
    CsvTestSheet,
    GoogleTestSheet,
    OperatorSheet,
    XlsxTestSheet,
    quick_settings,
)

START = 1_800_000_000.0
# The stand-in's quota is off the clock that matters here: keep the client's buckets out of
# the way (its limits are tested in sheets_integration).
FAST_QUOTA = {"read_per_minute": 6000, "write_per_minute": 6000, "quota_burst": 100}


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'p.db'}", clock=clock)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def google_settings(store: Store, standin: StandIn, key_file: Path) -> Settings:
    return quick_settings(
        store.url,
        credentials=str(key_file),
        sheets_api_url=standin.url,
        sheet_read_attempts=2,
        **FAST_QUOTA,
    )


@pytest.fixture
def scheduler_for(store: Store) -> Iterator[Callable[[Settings], Scheduler]]:
    made: list[Scheduler] = []

    def make(settings: Settings) -> Scheduler:
        s = Scheduler(store, settings, threaded=False)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop(10)


def run_at(scheduler: Scheduler, clock: Clock, when: float) -> None:
    clock.now = when
    scheduler.elect()
    scheduler.run_pass()
    scheduler.launcher.join(30)


@pytest.fixture(params=["csv", "xlsx", "google"])
def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    store: Store,
    standin: StandIn,
    service_account_key: ServiceAccountKey,
    key_file: Path,
) -> tuple[Callable[[list[str]], OperatorSheet], Settings]:
    settings = quick_settings(
        store.url, credentials=str(key_file), sheets_api_url=standin.url, **FAST_QUOTA
    )
    if request.param == "csv":
        return (lambda rows: CsvTestSheet(tmp_path / "leads.csv", rows)), settings
    if request.param == "xlsx":
        return (lambda rows: XlsxTestSheet(tmp_path / "leads.xlsx", rows)), settings
    return (lambda rows: GoogleTestSheet(standin, service_account_key.email, rows)), settings


def test_each_tick_takes_the_rows_added_since_the_last_on_every_backend(
    store: Store,
    clock: Clock,
    backend: tuple[Callable[[list[str]], Any], Settings],
    scheduler_for: Callable[[Settings], Scheduler],
) -> None:
    make, settings = backend
    sheet = make(["Acme", "Beta"])
    sid = add_schedule(store, settings, ScheduleInput(sheet=sheet.spec, every="60s")).schedule_id
    scheduler = scheduler_for(settings)
    run_at(scheduler, clock, START + 60)
    first_ids = sheet.job_ids()
    sheet.append("Gamma")
    run_at(scheduler, clock, START + 120)
    run_at(scheduler, clock, START + 180)
    assert sheet.statuses() == {"Acme": "completed", "Beta": "completed", "Gamma": "completed"}
    assert {k: v for k, v in sheet.job_ids().items() if k != "Gamma"} == first_ids
    ticks = store.ticks(sid)[::-1]
    assert [(t.state, t.rows) for t in ticks] == [
        (TickState.SUCCEEDED, 2),
        (TickState.SUCCEEDED, 1),
        (TickState.SKIPPED, None),
    ]
    assert ticks[2].reason is TickReason.NO_NEW_ROWS
    assert len(store.batches()) == 2


def test_a_google_tick_with_nothing_new_costs_one_read(
    store: Store,
    clock: Clock,
    standin: StandIn,
    service_account_key: ServiceAccountKey,
    google_settings: Settings,
    scheduler_for: Callable[[Settings], Scheduler],
) -> None:
    sheet = GoogleTestSheet(standin, service_account_key.email, ["Acme"])
    sid = add_schedule(store, google_settings, ScheduleInput(sheet=sheet.spec, every="60s"))
    scheduler = scheduler_for(google_settings)
    run_at(scheduler, clock, START + 60)  # processes Acme
    run_at(scheduler, clock, START + 120)  # opens the sheet for its own reads once
    standin.clear_log()
    for minute in (3, 4, 5):
        run_at(scheduler, clock, START + 60 * minute)
    assert [t.reason for t in store.ticks(sid.schedule_id, limit=3)] == [TickReason.NO_NEW_ROWS] * 3
    api_requests = [r for r in standin.log if r.kind != "token"]
    assert len(api_requests) == 3 and {r.kind for r in api_requests} == {"read"}


@pytest.mark.parametrize("problem", ["404", "403", "503"])
def test_an_unreachable_google_sheet_fails_the_tick_with_the_reason_and_the_schedule_goes_on(
    store: Store,
    clock: Clock,
    standin: StandIn,
    service_account_key: ServiceAccountKey,
    google_settings: Settings,
    scheduler_for: Callable[[Settings], Scheduler],
    problem: str,
) -> None:
    sheet = GoogleTestSheet(standin, service_account_key.email, ["Acme"])
    spec = sheet.spec
    if problem == "404":
        spec = "1" + "x" * 43 + "/Leads"  # a key that does not exist
    sid = add_schedule(store, google_settings, ScheduleInput(sheet=spec, every="60s")).schedule_id
    if problem == "403":
        standin.unshare(sheet.key, service_account_key.email)
    if problem == "503":
        standin.inject(Fault.UNAVAILABLE, times=2 * 2)  # every attempt of two ticks
    scheduler = scheduler_for(google_settings)
    run_at(scheduler, clock, START + 60)
    (tick,) = store.ticks(sid)
    assert (tick.state, tick.reason) == (TickState.FAILED, TickReason.SHEET_UNREACHABLE)
    expected = {
        "404": "sheet not found",
        "403": f"{service_account_key.email} may not edit",
        "503": "unavailable",
    }[problem]
    assert expected in (tick.detail or ""), tick.detail
    assert store.batches() == []
    if problem == "503":
        run_at(scheduler, clock, START + 120)  # still down
        standin.clear_faults()
        run_at(scheduler, clock, START + 180)  # back: the schedule went on
        assert [t.state for t in store.ticks(sid)][::-1] == [
            TickState.FAILED,
            TickState.FAILED,
            TickState.SUCCEEDED,
        ]
        assert sheet.statuses() == {"Acme": "completed"}
