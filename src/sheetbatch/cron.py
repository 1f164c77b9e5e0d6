"""Cron expressions: five fields (minute hour day-of-month month day-of-week) matched
against wall-clock times. Pure: no clock, no time zone (see `timetable.py` for those).

Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month names
(JAN-DEC) and weekday names (SUN-SAT; 0 and 7 are Sunday). When both day-of-month and
day-of-week are restricted a day matching either fires (as Vixie cron does). Macros:
@hourly @daily @midnight @weekly @monthly @yearly @annually.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sheetbatch.errors import SheetbatchError

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)
# Far enough for any expression that fires at all (Feb 29 on a Monday: every 28 years).
_HORIZON_DAYS = 366 * 29


class CronError(SheetbatchError, ValueError):
    """A cron expression that cannot be parsed; the message names the field."""


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    key = text.upper()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise CronError(f"{field}: {text!r} is not a number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{field}: {value} is out of range {low}-{high}")
    return value


def _parse_field(text: str, low: int, high: int, names: dict[str, int], field: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field}: empty list item in {text!r}")
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"{field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            start = _value(a, low, high, names, field)
            end = _value(b, low, high, names, field)
            if start > end:
                raise CronError(f"{field}: range {span!r} runs backwards")
        else:
            start = _value(span, low, high, names, field)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return values


@dataclass(frozen=True)
class CronExpression:
    """A parsed cron expression; `matches_day` and `times` drive the timetable."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse `text`; raises CronError naming the offending field."""
        expr = " ".join(text.split())
        expanded = MACROS.get(expr.lower(), expr)
        parts = expanded.split(" ")
        if len(parts) != 5:
            raise CronError(
                f"{text!r}: a cron expression has 5 fields (minute hour day-of-month month "
                f"day-of-week), not {len(parts)}"
            )
        sets = [
            _parse_field(part, low, high, names, name)
            for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(
            text=expr,
            minutes=tuple(sorted(sets[0])),
            hours=tuple(sorted(sets[1])),
            days=frozenset(sets[2]),
            months=frozenset(sets[3]),
            weekdays=weekdays,
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )

    @property
    def standard(self) -> str:
        """The five-field form (macros expanded)."""
        return MACROS.get(self.text.lower(), self.text)

    def matches_day(self, day: date) -> bool:
        """Whether the expression fires on `day` at all."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def wall_times(self, start: datetime) -> Iterator[datetime]:
        """Matching wall-clock times (naive, whole minutes) at or after `start`, in order."""
        first = start.replace(second=0, microsecond=0)
        if first < start:
            first += timedelta(minutes=1)
        day = first.date()
        for _ in range(_HORIZON_DAYS):
            if self.matches_day(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        moment = datetime(day.year, day.month, day.day, hour, minute)
                        if moment >= first:
                            yield moment
            day += timedelta(days=1)
