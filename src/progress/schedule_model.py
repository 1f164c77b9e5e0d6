"""What the store keeps of schedules and ticks: states, reasons and the rows as read.

A schedule says what to run (a sheet, a pipeline, options) and when (its trigger, kept as
JSON the scheduler interprets). A tick is one due time of one schedule, with what became of
it and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from progress.snapshots import iso


class TickState(StrEnum):
    """Where a tick is: `running` (claimed; its batch, once launched, runs), `queued` (waits
    for the schedule's previous run), or one of the ends."""

    RUNNING = "running"
    QUEUED = "queued"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    MISSED = "missed"

    @property
    def terminal(self) -> bool:
        return self not in (TickState.RUNNING, TickState.QUEUED)


class TickReason(StrEnum):
    """Why a tick ended the way it did (or waits)."""

    NO_NEW_ROWS = "no_new_rows"
    OVERLAP = "overlap"
    SHEET_UNREACHABLE = "sheet_unreachable"
    PAUSED = "paused"
    MISSED = "missed"
    CATCHUP_SKIPPED = "catchup_skipped"
    ERROR = "error"
    ROWS_FAILED = "rows_failed"
    CANCELLED = "cancelled"


# Failures that count towards `[scheduler] pause_after_failures`: the tick could not run at
# all. Rows that failed are the sheet's business, not the schedule's.
COUNTED_FAILURES = frozenset({TickReason.SHEET_UNREACHABLE, TickReason.ERROR})


class Overlap(StrEnum):
    """What a due tick does while the schedule's previous run still goes."""

    SKIP = "skip"
    QUEUE = "queue"


class Catchup(StrEnum):
    """What happens to due times missed while no scheduler ran."""

    LATEST = "latest"
    NONE = "none"


@dataclass(frozen=True)
class Fence:
    """The lease a write is conditional on: refused unless `owner` holds `name` at `epoch`."""

    name: str
    owner: str
    epoch: int


@dataclass(frozen=True)
class NewSchedule:
    """A schedule to create."""

    name: str
    sheet: str
    pipeline: str
    trigger: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    overlap: Overlap = Overlap.SKIP
    catchup: Catchup = Catchup.LATEST
    paused: bool = False
    notify: tuple[str, ...] = ()
    source: str = "cli"


@dataclass(frozen=True)
class ScheduleRow:
    """A schedule as stored."""

    schedule_id: str
    name: str
    sheet: str
    pipeline: str
    options: dict[str, Any]
    trigger: dict[str, Any]
    overlap: Overlap
    catchup: Catchup
    paused: bool
    paused_reason: str | None
    notify: list[str]
    source: str
    cursor: float
    failures: int
    created: float
    updated: float
    last_event_id: int

    @classmethod
    def from_row(cls, row: Any) -> ScheduleRow:
        return cls(
            schedule_id=row.schedule_id,
            name=row.name,
            sheet=row.sheet,
            pipeline=row.pipeline,
            options=dict(row.options or {}),
            trigger=dict(row.trigger or {}),
            overlap=Overlap(row.overlap),
            catchup=Catchup(row.catchup),
            paused=bool(row.paused),
            paused_reason=row.paused_reason,
            notify=list(row.notify or []),
            source=row.source,
            cursor=float(row.cursor),
            failures=int(row.failures or 0),
            created=float(row.created),
            updated=float(row.updated),
            last_event_id=int(row.last_event_id or 0),
        )

    def to_json(self) -> dict[str, Any]:
        """The schedule as the CLI's `--json` and the API show it."""
        return {
            "schedule_id": self.schedule_id,
            "name": self.name,
            "sheet": self.sheet,
            "pipeline": self.pipeline,
            "options": self.options,
            "trigger": self.trigger,
            "overlap": self.overlap.value,
            "catchup": self.catchup.value,
            "paused": self.paused,
            "paused_reason": self.paused_reason,
            "notify": self.notify,
            "source": self.source,
            "failures": self.failures,
            "created": iso(self.created),
            "updated": iso(self.updated),
            "last_event_id": self.last_event_id,
        }


@dataclass(frozen=True)
class TickRow:
    """A tick as stored."""

    tick_id: str
    schedule_id: str
    scheduled_for: float
    state: TickState
    reason: TickReason | None
    detail: str | None
    manual: bool
    catchup: bool
    started: float | None
    finished: float | None
    lag: float | None
    batch_id: str | None
    rows: int | None
    scheduler: str
    epoch: int | None
    updated: float

    @classmethod
    def from_row(cls, row: Any) -> TickRow:
        return cls(
            tick_id=row.tick_id,
            schedule_id=row.schedule_id,
            scheduled_for=float(row.scheduled_for),
            state=TickState(row.state),
            reason=TickReason(row.reason) if row.reason else None,
            detail=row.detail,
            manual=bool(row.manual),
            catchup=bool(row.catchup),
            started=row.started,
            finished=row.finished,
            lag=row.lag,
            batch_id=row.batch_id,
            rows=row.rows,
            scheduler=row.scheduler,
            epoch=row.epoch,
            updated=float(row.updated),
        )

    def to_json(self) -> dict[str, Any]:
        """The tick as `schedule ticks --json`, the API and the tick events show it."""
        return {
            "tick_id": self.tick_id,
            "schedule_id": self.schedule_id,
            "scheduled_for": iso(self.scheduled_for),
            "state": self.state.value,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
            "manual": self.manual,
            "catchup": self.catchup,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "lag_seconds": None if self.lag is None else round(self.lag, 3),
            "batch_id": self.batch_id,
            "rows": self.rows,
            "scheduler": self.scheduler,
            "epoch": self.epoch,
        }


def tick_batch_id(tick_id: str) -> str:
    """The id of the batch a tick launches: derived from the tick, so that creating it twice
    is refused by the batches' primary key (the tick is the batch's idempotency key)."""
    return "b-" + tick_id


@dataclass(frozen=True)
class PlannedTick:
    """A due time the planner decided about: the tick row to record for it."""

    scheduled_for: float
    state: TickState
    reason: TickReason | None = None
    detail: str | None = None
    catchup: bool = False
    manual: bool = False
