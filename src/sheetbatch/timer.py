"""The in-process timer: APScheduler wakes the scheduler at each schedule's due times.

APScheduler is only the alarm clock here. Its jobs are rebuilt from the `schedules` table
(a memory job store; nothing is pickled, nothing of it is shared between processes), each
job's trigger is our own timetable, and a job's only effect is to wake the scheduler's
loop, which then decides from the store what is due. A missed alarm costs nothing: the loop
also wakes every poll interval and the planner looks at every due time since the cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from progress.schedule_model import ScheduleRow
from sheetbatch.timetable import Trigger, TriggerError, trigger_from_json

log = logging.getLogger(__name__)


class TimetableTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger that fires at our timetable's instants."""

    def __init__(self, trigger: Trigger) -> None:
        self.trigger = trigger

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time or now
        # At `now` itself a due time is still ahead (a job added exactly at its due time).
        base = after.timestamp() - (0.0 if previous_fire_time else 1e-6)
        instant = self.trigger.next_after(base)
        return None if instant is None else datetime.fromtimestamp(instant, UTC)

    def __str__(self) -> str:
        return f"timetable[{self.trigger.describe()}]"


class Timer:
    """One APScheduler job per active schedule, each waking `wake()`."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._scheduler: Any = None
        self._jobs: dict[str, tuple[Any, ...]] = {}

    def start(self) -> None:
        """Start the timer thread (no jobs until `sync`)."""
        if self._scheduler is not None:
            return
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler.start()

    def sync(self, schedules: Iterable[ScheduleRow]) -> None:
        """Make the jobs match the schedules (paused ones still wake: they record `paused`)."""
        if self._scheduler is None:
            return
        wanted: dict[str, tuple[Any, ...]] = {}
        for schedule in schedules:
            key = (schedule.schedule_id, tuple(sorted(schedule.trigger.items())))
            wanted[schedule.schedule_id] = key
            if self._jobs.get(schedule.schedule_id) == key:
                continue
            try:
                trigger = trigger_from_json(schedule.trigger)
            except TriggerError as exc:
                log.error("schedule %s has an unusable trigger: %s", schedule.schedule_id, exc)
                continue
            self._scheduler.add_job(
                self._wake,
                TimetableTrigger(trigger),
                id=schedule.schedule_id,
                name=schedule.name,
                replace_existing=True,
            )
        for schedule_id in set(self._jobs) - set(wanted):
            self._scheduler.remove_job(schedule_id)
        self._jobs = {k: v for k, v in wanted.items() if self._scheduler.get_job(k) is not None}

    def clear(self) -> None:
        """Remove every job (this process no longer leads)."""
        if self._scheduler is not None:
            self._scheduler.remove_all_jobs()
        self._jobs = {}

    def stop(self) -> None:
        """Stop the timer thread."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        self._jobs = {}
