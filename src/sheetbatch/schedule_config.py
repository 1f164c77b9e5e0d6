"""Schedules declared in `config/*.toml` as `[[schedule]]` tables, applied at scheduler start.

Each table has a stable `name`: a schedule of that name is created once and updated when its
table changes, never duplicated (whichever process applies it, however often). Keys: `name`,
`sheet`, `every` or `cron` (+ `timezone`), and optionally `pipeline`, `retry_failed`,
`overlap`, `catchup`, `paused` (at creation only: pausing later is the operator's), `notify`.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from progress import Store
from progress.errors import DuplicateSchedule
from sheetbatch.config import ConfigError, Settings, config_paths
from sheetbatch.schedules import ScheduleError, ScheduleInput, change_schedule, new_schedule

log = logging.getLogger(__name__)

KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "sheet": str,
    "every": str,
    "cron": str,
    "timezone": str,
    "pipeline": str,
    "retry_failed": bool,
    "overlap": str,
    "catchup": str,
    "paused": bool,
    "notify": list,
}


@dataclass(frozen=True)
class DeclaredSchedule:
    """A `[[schedule]]` table: where it came from and what it says."""

    source: str
    given: ScheduleInput


def declared_schedules(config_files: list[Path] | None = None) -> list[DeclaredSchedule]:
    """Every `[[schedule]]` of the config files; raises ConfigError naming file and key."""
    out: list[DeclaredSchedule] = []
    seen: dict[str, str] = {}
    for path in config_paths(config_files):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        tables = data.get("schedule", [])
        if not isinstance(tables, list):
            raise ConfigError(f"{path}: schedules are [[schedule]] tables (an array of tables)")
        for i, table in enumerate(tables, start=1):
            where = f"{path}: [[schedule]] #{i}"
            out.append(DeclaredSchedule(where, _table(table, where)))
            name = str(table["name"])
            if name in seen:
                raise ConfigError(f"{where}: name {name!r} is declared twice ({seen[name]})")
            seen[name] = where
    return out


def _table(table: Any, where: str) -> ScheduleInput:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: not a table")
    for key, value in table.items():
        kind = KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(KEYS)})")
        if not isinstance(value, kind) or (
            isinstance(value, list) and not all(isinstance(v, str) for v in value)
        ):
            raise ConfigError(f"{where}: {key} must be a {getattr(kind, '__name__', kind)}")
    for key in ("name", "sheet"):
        if not str(table.get(key, "")).strip():
            raise ConfigError(f"{where}: {key} is required (a stable name identifies it)")
    return ScheduleInput(
        sheet=table["sheet"],
        every=table.get("every"),
        cron=table.get("cron"),
        timezone=table.get("timezone"),
        name=table["name"],
        pipeline=table.get("pipeline"),
        retry_failed=bool(table.get("retry_failed", False)),
        overlap=str(table.get("overlap", "skip")),
        catchup=str(table.get("catchup", "latest")),
        paused=bool(table.get("paused", False)),
        notify=tuple(table.get("notify", ())),
    )


def apply_declared(
    store: Store, settings: Settings, declared: list[DeclaredSchedule]
) -> list[tuple[str, str]]:
    """Create or update each declared schedule by name; (name, "created" | "updated" |
    "unchanged") for each. Raises ConfigError naming the table at fault."""
    done: list[tuple[str, str]] = []
    for item in declared:
        name = str(item.given.name)
        try:
            done.append((name, _apply_one(store, settings, item)))
        except ScheduleError as exc:
            raise ConfigError(f"{item.source}: {exc.field}: {exc}") from exc
    return done


def _apply_one(store: Store, settings: Settings, item: DeclaredSchedule) -> str:
    name = str(item.given.name)
    for _attempt in range(2):
        existing = {s.name: s for s in store.schedules()}.get(name)
        if existing is None:
            spec = new_schedule(store, settings, item.given, source="config", must_exist=False)
            try:
                store.create_schedule(spec)
            except DuplicateSchedule:
                continue  # another scheduler created it this very moment: update it instead
            log.warning("schedule %r created from %s", name, item.source)
            return "created"
        given = item.given
        changes: dict[str, Any] = {
            "sheet": given.sheet,
            "pipeline": given.pipeline or settings.pipeline,
            "retry_failed": given.retry_failed,
            "overlap": given.overlap,
            "catchup": given.catchup,
            "notify": list(given.notify),
        }
        if given.every is not None:
            changes["every"] = given.every
        if given.cron is not None:
            changes["cron"] = given.cron
            changes["timezone"] = given.timezone
        after = change_schedule(store, settings, existing.schedule_id, changes, check_files=False)
        return "updated" if after.updated != existing.updated else "unchanged"
    raise ConfigError(f"{item.source}: schedule {name!r} could not be created or updated")
