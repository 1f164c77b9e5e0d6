"""Due times, pure: cron fields, DST rules, intervals in UTC, durations."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sheetbatch.timetable import (
    CronTrigger,
    IntervalTrigger,
    TriggerError,
    fire_times,
    local_iso,
    next_fire_times,
    parse_duration,
    trigger_from_json,
)


def at(wall: str, zone: str) -> float:
    return datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(zone)).timestamp()


def day_of(trigger: CronTrigger, day: str) -> list[str]:
    zone = trigger.zone.key
    return [
        local_iso(t, trigger)
        for t in fire_times(trigger, at(f"{day}T00:00", zone) - 1, at(f"{day}T23:59", zone))
    ]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 7 * *", "5 fields"),
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("0 24 * * *", "hour: 24"),
        ("0 0 32 * *", "day of month: 32"),
        ("0 0 * 13 *", "month: 13"),
        ("0 0 * * 8", "day of week: 8"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("a * * * *", "minute: 'a'"),
    ],
)
def test_a_bad_cron_expression_names_its_field(expr: str, message: str) -> None:
    with pytest.raises(TriggerError, match=message):
        CronTrigger.parse(expr)


def test_every_half_hour_across_fall_back_in_new_york_never_repeats_a_wall_time() -> None:
    trigger = CronTrigger.parse("*/30 * * * *", "America/New_York")
    times = day_of(trigger, "2026-11-01")
    walls = [t[11:16] for t in times]
    assert len(walls) == len(set(walls)) == 48  # 01:00 and 01:30 once each (the first)
    assert "2026-11-01T01:30:00-04:00" in times and "2026-11-01T01:30:00-05:00" not in times


def test_every_quarter_hour_inside_the_spring_gap_runs_once_at_its_end() -> None:
    trigger = CronTrigger.parse("*/15 2 * * *", "Europe/Berlin")
    assert day_of(trigger, "2026-03-29") == ["2026-03-29T03:00:00+02:00"]
    assert len(day_of(trigger, "2026-03-30")) == 4


def test_names_macros_and_the_day_of_month_or_day_of_week_rule() -> None:
    weekdays = CronTrigger.parse("0 7 * * mon-fri", "UTC")
    assert len(next_fire_times(weekdays, at("2026-12-05T00:00", "UTC"), 5)) == 5
    assert local_iso(weekdays.next_after(at("2026-12-05T00:00", "UTC")) or 0, weekdays) == (
        "2026-12-07T07:00:00+00:00"  # Saturday -> Monday
    )
    either = CronTrigger.parse("0 0 13 * fri", "UTC")  # the 13th, or any Friday
    days = [
        local_iso(t, either)[:10] for t in next_fire_times(either, at("2026-12-01T00:00", "UTC"), 3)
    ]
    assert days == ["2026-12-04", "2026-12-11", "2026-12-13"]
    assert CronTrigger.parse("@daily").cron.standard == "0 0 * * *"


def test_intervals_count_utc_seconds_from_the_anchor() -> None:
    five = IntervalTrigger(300)
    assert five.next_after(1_800_000_001) == 1_800_000_300
    assert five.next_after(1_800_000_300) == 1_800_000_600  # strictly after
    assert trigger_from_json(five.to_json()) == five


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "0s", "-1m", "1w"])
def test_bad_durations_say_what_a_duration_is(text: str) -> None:
    with pytest.raises(TriggerError, match="--every"):
        parse_duration(text)


def test_the_apscheduler_trigger_fires_at_our_timetables_instants() -> None:
    from datetime import UTC

    from sheetbatch.timer import TimetableTrigger

    trigger = TimetableTrigger(CronTrigger.parse("30 2 * * *", "America/New_York"))
    now = datetime.fromtimestamp(at("2026-03-08T00:00", "America/New_York"), UTC)
    first = trigger.get_next_fire_time(None, now)
    assert first is not None and first.timestamp() == at("2026-03-08T03:00", "America/New_York")
    second = trigger.get_next_fire_time(first, first)
    assert second is not None and second.timestamp() == at("2026-03-09T02:30", "America/New_York")
