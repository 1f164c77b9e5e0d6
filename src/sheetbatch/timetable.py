"""When a schedule is due: cron in the schedule's time zone, or a fixed interval in UTC.

Pure: `next_after(t)` and `fire_times(after, until)` take epoch seconds and never read a
clock. Cron times are wall-clock times of the zone (zoneinfo) with two rules at DST changes:
a time inside a spring-forward gap fires once, at the first valid instant after the gap; an
ambiguous fall-back time fires once, at its first occurrence. Intervals count seconds in
UTC from an anchor (epoch 0 by default, so `5m` fires at :00, :05, ...).

APScheduler 3.11's own CronTrigger does neither (measured: 02:30 in New York's gap fires at
03:30 EDT; 01:30 on fall-back day fires twice), which is why it only serves as the timer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sheetbatch.cron import CronError, CronExpression
from sheetbatch.errors import SheetbatchError

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GAP_LIMIT = timedelta(days=2)  # the longest clock jump on record is a day (Samoa, 2011)


class TriggerError(SheetbatchError, ValueError):
    """A trigger that cannot be used: a bad cron expression, zone or duration."""


def parse_duration(text: str) -> int:
    """`30s`, `5m`, `2h`, `1d` (or combined, `1h30m`) as whole seconds; raises TriggerError."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise TriggerError(f"--every: {text!r} is not a duration like 30s, 5m, 2h or 1d")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds < 1:
        raise TriggerError(f"--every: {text!r} must be at least 1 second")
    return seconds


def format_duration(seconds: float) -> str:
    """Whole seconds as the shortest `1d2h`-style text."""
    left = int(seconds)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            out.append(f"{left // size}{unit}")
            left %= size
    return "".join(out) or "0s"


class Trigger(Protocol):
    """A timetable: the instants (epoch seconds) a schedule is due at."""

    def next_after(self, t: float) -> float | None:
        """The first due instant strictly after `t`, or None when there is none."""
        ...

    def to_json(self) -> dict[str, Any]:
        """The form kept in the store."""
        ...

    def describe(self) -> str:
        """The trigger in words."""
        ...


@dataclass(frozen=True)
class IntervalTrigger:
    """Every `seconds` seconds in UTC, counted from `anchor`."""

    seconds: int
    anchor: float = 0.0

    def next_after(self, t: float) -> float:
        steps = math.floor((t - self.anchor) / self.seconds) + 1
        return self.anchor + steps * self.seconds

    def to_json(self) -> dict[str, Any]:
        return {"kind": "interval", "seconds": self.seconds, "anchor": self.anchor}

    def describe(self) -> str:
        return f"Every {format_duration(self.seconds)} (UTC)"


@dataclass(frozen=True)
class CronTrigger:
    """A cron expression in an IANA time zone."""

    cron: CronExpression
    zone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> CronTrigger:
        """Raises TriggerError naming what is wrong."""
        try:
            cron = CronExpression.parse(expression)
        except CronError as exc:
            raise TriggerError(f"--cron: {exc}") from exc
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise TriggerError(
                f"--timezone: {timezone!r} is not an IANA time zone (like Europe/Berlin)"
            ) from exc
        return cls(cron, zone)

    def next_after(self, t: float) -> float | None:
        local = datetime.fromtimestamp(t, self.zone).replace(tzinfo=None)
        # Start a little earlier than the wall clock shows: around a DST change a wall time
        # before it may still map to an instant after `t`.
        for wall in self.cron.wall_times(local - timedelta(hours=3)):
            instant = self.instant(wall)
            if instant > t:
                return instant
        return None

    def instant(self, wall: datetime) -> float:
        """The instant a wall-clock time of the zone fires at (the DST rules above)."""
        aware = wall.replace(tzinfo=self.zone, fold=0)  # fold 0: an ambiguous time's first
        moment = aware.astimezone(UTC)
        if moment.astimezone(self.zone).replace(tzinfo=None) == wall:
            return moment.timestamp()
        # In a gap: walk to the first wall time that exists (gaps end on a whole minute).
        probe = wall
        while probe - wall < _GAP_LIMIT:
            probe += timedelta(minutes=1)
            moment = probe.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
            if moment.astimezone(self.zone).replace(tzinfo=None) == probe:
                return moment.timestamp()
        raise TriggerError(f"no valid time after {wall} in {self.zone.key}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": "cron", "cron": self.cron.text, "timezone": self.zone.key}

    def describe(self) -> str:
        from cron_descriptor import get_description

        return f"{get_description(self.cron.standard)} ({self.zone.key})"


def trigger_from_json(data: Mapping[str, Any]) -> IntervalTrigger | CronTrigger:
    """The trigger kept in the store; raises TriggerError for anything else."""
    kind = data.get("kind")
    if kind == "interval":
        seconds = data.get("seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
            raise TriggerError(f"interval trigger needs whole seconds >= 1, not {seconds!r}")
        return IntervalTrigger(seconds, float(data.get("anchor") or 0.0))
    if kind == "cron":
        return CronTrigger.parse(str(data.get("cron", "")), str(data.get("timezone") or "UTC"))
    raise TriggerError(f"unknown trigger kind {kind!r} (cron or interval)")


def fire_times(
    trigger: Trigger, after: float, until: float, limit: int = 100_000
) -> Iterator[float]:
    """Due instants in (after, until], oldest first, at most `limit` of them."""
    t = after
    for _ in range(limit):
        nxt = trigger.next_after(t)
        if nxt is None or nxt > until:
            return
        yield nxt
        t = nxt


def next_fire_times(trigger: Trigger, after: float, count: int) -> list[float]:
    """The next `count` due instants after `after`."""
    out: list[float] = []
    t = after
    while len(out) < count:
        nxt = trigger.next_after(t)
        if nxt is None:
            break
        out.append(nxt)
        t = nxt
    return out


def local_iso(instant: float, trigger: Trigger) -> str:
    """An instant as ISO 8601 in the trigger's zone (UTC for intervals), with its offset."""
    zone = trigger.zone if isinstance(trigger, CronTrigger) else UTC
    return datetime.fromtimestamp(instant, zone).isoformat()
