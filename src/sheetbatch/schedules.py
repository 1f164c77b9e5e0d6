"""The library functions behind `sheetbatch schedule …` and `/api/schedules`: one code path.

Input is validated here once, with an error naming the option (or `[[schedule]]` key) at
fault; the views and commands only translate it. `schedule_view` is the schedule as every
surface shows it: the stored fields plus the trigger in words, the next fire times (with
their UTC offsets) and the last tick.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.registry import load_pipeline
from progress import Store
from progress.errors import DuplicateSchedule
from progress.schedule_model import Catchup, NewSchedule, Overlap, ScheduleRow, TickRow
from sheetbatch.config import Settings
from sheetbatch.errors import ScheduleError as ScheduleError  # re-exported: its home was here
from sheetbatch.timetable import (
    CronTrigger,
    IntervalTrigger,
    Trigger,
    TriggerError,
    format_duration,
    local_iso,
    next_fire_times,
    parse_duration,
    trigger_from_json,
)
from sheetbatch.webhook_client import webhook_refusal
from sheets_integration.locate import backend_name, split_xlsx_spec

log = logging.getLogger(__name__)

MAX_NAME = 200
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,199}$")


@dataclass(frozen=True)
class ScheduleInput:
    """A schedule as the CLI, the API or a `[[schedule]]` table gives it (unvalidated)."""

    sheet: str
    every: str | None = None
    cron: str | None = None
    timezone: str | None = None
    name: str | None = None
    pipeline: str | None = None
    retry_failed: bool = False
    overlap: str = "skip"
    catchup: str = "latest"
    paused: bool = False
    notify: Sequence[str] = field(default_factory=tuple)


def build_trigger(every: str | None, cron: str | None, timezone: str | None) -> Trigger:
    """The trigger of `--every DURATION` or `--cron EXPR [--timezone ZONE]`."""
    if (every is None) == (cron is None):
        raise ScheduleError("give either --every DURATION or --cron EXPR (one of them)", "every")
    try:
        if every is not None:
            if timezone:
                raise ScheduleError("--timezone goes with --cron; intervals run in UTC", "timezone")
            return IntervalTrigger(parse_duration(every))
        trigger = CronTrigger.parse(cron or "", timezone or "UTC")
    except TriggerError as exc:
        where = (
            "every" if every is not None else ("timezone" if "--timezone" in str(exc) else "cron")
        )
        raise ScheduleError(str(exc), where) from exc
    return trigger


def _check_choice(value: str, allowed: type[Overlap] | type[Catchup], option: str) -> str:
    names = [m.value for m in allowed]
    if value not in names:
        raise ScheduleError(f"--{option} must be {' or '.join(names)}, not {value!r}", option)
    return value


def check_sheet(spec: str, *, must_exist: bool) -> str:
    """A sheet spec some backend opens; a local file must exist when `must_exist`."""
    text = spec.strip()
    if not text or "\x00" in text or len(text) > 4096:
        raise ScheduleError("SHEET must be a .csv/.xlsx path or a Google Sheets URL", "sheet")
    kind = backend_name(text)
    if kind is None:
        raise ScheduleError(
            f"cannot tell what kind of sheet {text!r} is; give a .csv or .xlsx path "
            "(a worksheet as file.xlsx#Worksheet) or a Google Sheets URL",
            "sheet",
        )
    if must_exist and kind in ("csv", "xlsx"):
        split = split_xlsx_spec(text)
        path = split[0] if split is not None else Path(text).expanduser()
        if not path.is_file():
            raise ScheduleError(f"sheet not found: {text} (relative to {Path.cwd()})", "sheet")
        # Kept absolute: the scheduler that runs it may have started in another directory.
        worksheet = split[1] if split is not None else None
        return str(path.resolve()) + (f"#{worksheet}" if worksheet else "")
    return text


def _check_pipeline(ref: str) -> str:
    try:
        load_pipeline(ref)
    except PipelineError as exc:
        raise ScheduleError(str(exc), "pipeline") from exc
    return ref


def _default_name(store: Store, sheet: str, trigger: Trigger) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(sheet.split("#")[0]).stem or "sheet")[:60]
    if isinstance(trigger, IntervalTrigger):
        base = f"{stem}-every-{format_duration(trigger.seconds)}"
    else:
        base = f"{stem}-cron"
    taken = {s.name for s in store.schedules()}
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def new_schedule(
    store: Store, settings: Settings, given: ScheduleInput, *, source: str, must_exist: bool = True
) -> NewSchedule:
    """A validated schedule to create; raises ScheduleError naming the option at fault."""
    sheet = check_sheet(given.sheet, must_exist=must_exist)
    trigger = build_trigger(given.every, given.cron, given.timezone)
    if trigger.next_after(store.clock()) is None:
        raise ScheduleError(f"--cron {given.cron!r} never fires", "cron")
    pipeline = _check_pipeline(given.pipeline or settings.pipeline)
    name = (given.name or "").strip() or _default_name(store, sheet, trigger)
    if not _NAME.fullmatch(name):
        raise ScheduleError(
            "--name must start with a letter or digit and use letters, digits, space and "
            f"._:- (at most {MAX_NAME} characters)",
            "name",
        )
    for url in given.notify:
        refusal = webhook_refusal(url, settings.allow_hosts)
        if refusal is not None:
            raise ScheduleError(f"--notify {url[:60]!r}: {refusal}", "notify")
    return NewSchedule(
        name=name,
        sheet=sheet,
        pipeline=pipeline,
        trigger=trigger.to_json(),
        options={"retry_failed": bool(given.retry_failed)},
        overlap=Overlap(_check_choice(given.overlap, Overlap, "overlap")),
        catchup=Catchup(_check_choice(given.catchup, Catchup, "catchup")),
        paused=bool(given.paused),
        notify=tuple(given.notify),
        source=source,
    )


def add_schedule(
    store: Store, settings: Settings, given: ScheduleInput, *, source: str = "cli"
) -> ScheduleRow:
    """Create a schedule; raises ScheduleError (bad input, or a name taken)."""
    spec = new_schedule(store, settings, given, source=source)
    try:
        return store.create_schedule(spec)
    except DuplicateSchedule as exc:
        raise ScheduleError(str(exc), "name") from exc


def change_schedule(
    store: Store,
    settings: Settings,
    schedule_id: str,
    changes: Mapping[str, Any],
    *,
    check_files: bool = True,
) -> ScheduleRow:
    """Apply a partial change (the fields of ScheduleInput); pause/resume via `paused`.

    A new local sheet must exist unless `check_files` is False (config tables).
    """
    current = store.schedule(schedule_id)
    trigger = trigger_from_json(current.trigger)
    cron = trigger.cron.text if isinstance(trigger, CronTrigger) else None
    every = format_duration(trigger.seconds) if isinstance(trigger, IntervalTrigger) else None
    zone = trigger.zone.key if isinstance(trigger, CronTrigger) else None
    if "every" in changes or "cron" in changes:
        every, cron = changes.get("every"), changes.get("cron")
        zone = changes.get("timezone") if cron else None
    elif "timezone" in changes:
        zone = changes["timezone"]
    merged = ScheduleInput(
        sheet=str(changes.get("sheet", current.sheet)),
        every=every,
        cron=cron,
        timezone=zone,
        name=str(changes.get("name", current.name)),
        pipeline=str(changes.get("pipeline", current.pipeline)),
        retry_failed=bool(changes.get("retry_failed", current.options.get("retry_failed", False))),
        overlap=str(changes.get("overlap", current.overlap.value)),
        catchup=str(changes.get("catchup", current.catchup.value)),
        notify=tuple(changes.get("notify", current.notify)),
    )
    moved = check_files and "sheet" in changes and changes["sheet"] != current.sheet
    spec = new_schedule(store, settings, merged, source=current.source, must_exist=moved)
    fields = {
        "name": spec.name,
        "sheet": spec.sheet,
        "pipeline": spec.pipeline,
        "trigger": dict(spec.trigger),
        "options": {**current.options, **spec.options},
        "overlap": spec.overlap,
        "catchup": spec.catchup,
        "notify": list(spec.notify),
    }
    current_fields = {
        "name": current.name,
        "sheet": current.sheet,
        "pipeline": current.pipeline,
        "trigger": current.trigger,
        "options": current.options,
        "overlap": current.overlap,
        "catchup": current.catchup,
        "notify": current.notify,
    }
    diff = {k: v for k, v in fields.items() if current_fields[k] != v}
    row = current
    if diff:
        try:
            row = store.update_schedule(schedule_id, diff)
        except DuplicateSchedule as exc:
            raise ScheduleError(str(exc), "name") from exc
    if "paused" in changes and bool(changes["paused"]) != row.paused:
        row = (
            store.pause_schedule(schedule_id)
            if changes["paused"]
            else store.resume_schedule(schedule_id)
        )
    return row


def schedule_view(
    store: Store, schedule: ScheduleRow, *, last_tick: TickRow | None = None, upcoming: int = 5
) -> dict[str, Any]:
    """The schedule as the CLI (`--json`), the API and the dashboard show it."""
    out = schedule.to_json()
    try:
        trigger = trigger_from_json(schedule.trigger)
    except TriggerError as exc:
        out.update(description=f"unusable trigger: {exc}", next_fire_times=[])
    else:
        times = next_fire_times(trigger, max(store.clock(), schedule.cursor), upcoming)
        out.update(
            description=trigger.describe(),
            next_fire_times=[local_iso(t, trigger) for t in times],
        )
    out["last_tick"] = last_tick.to_json() if last_tick is not None else None
    return out


def schedule_views(store: Store) -> list[dict[str, Any]]:
    """Every schedule's view, oldest first."""
    last = store.last_ticks()
    return [schedule_view(store, s, last_tick=last.get(s.schedule_id)) for s in store.schedules()]


def preview(store: Store, settings: Settings, schedule: ScheduleRow) -> dict[str, Any]:
    """The rows a tick would select now (nothing is written or started)."""
    from sheetbatch.tick_runner import SheetReader, select_for
    from sheets_integration.sheet import JOB_ID_COLUMN, STATUS_COLUMN

    reader = SheetReader(settings, store)
    try:
        sheet, table = reader.read(schedule.sheet)
        rows, selection = select_for(store, settings, sheet, table, schedule)
    finally:
        reader.close()
    first = table.header[0] if table.header else ""
    return {
        "schedule_id": schedule.schedule_id,
        "sheet": schedule.sheet,
        "total_rows": len(table.rows),
        "selected": len(rows),
        "skipped": selection.skipped.as_json(),
        "rows": [
            {
                "row": i + 2,
                "label": table.cell(i, "Company") or table.cell(i, first),
                "status": table.cell(i, STATUS_COLUMN),
                "job_id": table.cell(i, JOB_ID_COLUMN),
            }
            for i in rows[:1000]
        ],
    }


def leader_status(store: Store) -> dict[str, Any]:
    """Who leads the schedulers (if anyone), its epoch and last heartbeat; live members."""
    from sheetbatch.scheduler import LEADER_LEASE, MEMBER_PREFIX

    now = store.clock()
    lease = store.lease(LEADER_LEASE)
    members = [m.owner for m in store.leases_like(MEMBER_PREFIX) if m.held(now)]
    return {
        "leader": lease.to_json(now) if lease is not None else None,
        "leading": bool(lease and lease.held(now)),
        "schedulers": members,
    }


def find(store: Store, key: str) -> ScheduleRow:
    """A schedule by id or name; raises UnknownSchedule."""
    return store.find_schedule(key)


__all__ = [
    "ScheduleError",
    "ScheduleInput",
    "add_schedule",
    "build_trigger",
    "change_schedule",
    "find",
    "leader_status",
    "preview",
    "schedule_view",
    "schedule_views",
]
