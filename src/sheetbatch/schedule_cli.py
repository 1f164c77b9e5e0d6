"""`sheetbatch schedule …` and `sheetbatch scheduler`: thin commands over `schedules.py`.

Every command takes `--db`; `--json` prints JSON (one object per line for lists). Bad input
is one line naming the option, exit 2, nothing written.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from progress import Store
from progress.schedule_model import TickState
from sheetbatch.cli_errors import CommandError
from sheetbatch.compactor import Compactor
from sheetbatch.config import Settings, load_settings
from sheetbatch.schedule_config import apply_declared, declared_schedules
from sheetbatch.schedules import (
    ScheduleInput,
    add_schedule,
    leader_status,
    preview,
    schedule_view,
    schedule_views,
)
from sheetbatch.service import store_for
from sheets_integration.errors import SheetError

log = logging.getLogger(__name__)


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    files = (ctx.obj or {}).get("config_files")
    return load_settings(config_files=files, overrides=overrides)


@contextmanager
def _store(ctx: click.Context, db: str | None) -> Iterator[tuple[Store, Settings]]:
    # An unknown schedule, bad input or a store that cannot be opened: said by the group.
    settings = _settings(ctx, db=db)
    store = store_for(settings)
    try:
        yield store, settings
    finally:
        store.close()


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, sort_keys=True))


db_option = click.option("--db", help="Progress store URL (sqlite:///path or postgresql://…).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("schedule")
def schedule_group() -> None:
    """Run sheets on a timetable: add, inspect, pause and trigger schedules."""


@schedule_group.command("add")
@click.argument("sheet")
@click.option("--every", help="Interval in UTC: 30s, 5m, 2h, 1d.")
@click.option("--cron", help='Cron expression, e.g. "0 7 * * 1-5".')
@click.option("--timezone", help="IANA time zone of --cron (default UTC), e.g. Europe/Berlin.")
@click.option("--name", help="A stable, unique name (default: from the sheet and trigger).")
@click.option("--pipeline", help="Pipeline name or module:attribute (default: [run] pipeline).")
@click.option("--retry-failed", is_flag=True, help="Ticks also redo rows whose status is failed.")
@click.option("--overlap", type=click.Choice(["skip", "queue"]), default="skip", show_default=True)
@click.option(
    "--catchup", type=click.Choice(["latest", "none"]), default="latest", show_default=True
)
@click.option("--notify", multiple=True, help="Webhook URL told about failed ticks (repeatable).")
@click.option("--paused", is_flag=True, help="Create it paused.")
@db_option
@json_option
@click.pass_context
def add(ctx: click.Context, /, sheet: str, db: str | None, as_json: bool, **opts: Any) -> None:
    """Schedule SHEET; prints the new schedule's id (--json: the schedule)."""
    given = ScheduleInput(sheet=sheet, notify=tuple(opts.pop("notify")), **opts)
    with _store(ctx, db) as (store, settings):
        row = add_schedule(store, settings, given)
        if as_json:
            _echo_json(schedule_view(store, row))
        else:
            click.echo(row.schedule_id)


@schedule_group.command("list")
@db_option
@json_option
@click.pass_context
def list_(ctx: click.Context, db: str | None, as_json: bool) -> None:
    """Every schedule with its trigger, next fire time and last tick."""
    with _store(ctx, db) as (store, _settings):
        views = schedule_views(store)
        if as_json:
            for view in views:
                _echo_json(view)
            return
        if not views:
            click.echo("no schedules yet (sheetbatch schedule add SHEET --every 1h)")
        for v in views:
            last = v["last_tick"]
            last_text = (
                f"{last['state']}{' (' + last['reason'] + ')' if last['reason'] else ''}"
                if last
                else "no tick yet"
            )
            nxt = v["next_fire_times"][0] if v["next_fire_times"] else "never"
            flag = "  PAUSED" if v["paused"] else ""
            click.echo(
                f"{v['schedule_id']}  {v['name']}  {v['description']}  next {nxt}  "
                f"last: {last_text}{flag}"
            )


@schedule_group.command("show")
@click.argument("schedule_id")
@db_option
@json_option
@click.pass_context
def show(ctx: click.Context, schedule_id: str, db: str | None, as_json: bool) -> None:
    """One schedule: the trigger in words, the next 5 fire times, the latest ticks."""
    with _store(ctx, db) as (store, _settings):
        row = store.find_schedule(schedule_id)
        ticks = store.ticks(row.schedule_id, limit=5)
        view = schedule_view(store, row, last_tick=ticks[0] if ticks else None)
        if as_json:
            _echo_json({**view, "ticks": [t.to_json() for t in ticks]})
            return
        paused = f"  (paused: {row.paused_reason})" if row.paused else ""
        click.echo(f"{row.schedule_id}  {row.name}{paused}")
        click.echo(f"  sheet     {row.sheet}")
        retry = "  (retry failed rows)" if row.options.get("retry_failed") else ""
        click.echo(f"  pipeline  {row.pipeline}{retry}")
        click.echo(f"  when      {view['description']}")
        click.echo(f"  overlap   {row.overlap.value}   catch-up {row.catchup.value}")
        click.echo("  next fire times:")
        for when in view["next_fire_times"]:
            click.echo(f"    {when}")
        click.echo("  latest ticks:" if ticks else "  no tick yet")
        for tick in ticks:
            click.echo("    " + _tick_line(tick.to_json()))


def _tick_line(t: dict[str, Any]) -> str:
    reason = f" {t['reason']}" if t["reason"] else ""
    detail = f" ({t['detail']})" if t["detail"] else ""
    # A finished tick's detail counts its rows; a running one says how many it selected.
    rows = "" if t["detail"] else f" ({t['rows']} row{'' if t['rows'] == 1 else 's'})"
    batch = f" batch {t['batch_id']}{rows}" if t["batch_id"] else ""
    return f"{t['scheduled_for']}  {t['state']:<9}{reason}{batch}{detail}"


def _simple(action: Callable[[Store, str], Any], done: str) -> Callable[..., None]:
    @click.argument("schedule_id")
    @db_option
    @json_option
    @click.pass_context
    def command(ctx: click.Context, schedule_id: str, db: str | None, as_json: bool) -> None:
        with _store(ctx, db) as (store, _settings):
            row = store.find_schedule(schedule_id)
            result = action(store, row.schedule_id)
            if as_json:
                _echo_json(
                    result.to_json()
                    if hasattr(result, "to_json")
                    else {"schedule_id": row.schedule_id, "deleted": True}
                )
            else:
                click.echo(f"{row.schedule_id}: {done}")

    return command


schedule_group.command("pause", help="Pause a schedule: its due times are skipped (paused).")(
    _simple(lambda store, sid: store.pause_schedule(sid), "paused")
)
schedule_group.command("resume", help="Resume a schedule from now on (it never floods).")(
    _simple(lambda store, sid: store.resume_schedule(sid), "resumed")
)
schedule_group.command("delete", help="Delete a schedule and its tick history.")(
    _simple(lambda store, sid: store.delete_schedule(sid), "deleted")
)


@schedule_group.command("trigger")
@click.argument("schedule_id")
@click.option("--wait", is_flag=True, help="Wait for the tick to end; exit 1 when it failed.")
@click.option(
    "--timeout", type=float, default=3600.0, show_default=True, help="Seconds --wait waits."
)
@db_option
@json_option
@click.pass_context
def trigger(
    ctx: click.Context, schedule_id: str, wait: bool, timeout: float, db: str | None, as_json: bool
) -> None:
    """Run the schedule now, as a tick (started by the running scheduler)."""
    from progress.owners import new_owner

    with _store(ctx, db) as (store, _settings):
        row = store.find_schedule(schedule_id)
        tick = store.request_run(row.schedule_id, requested_by=f"cli {new_owner()}")
        if not leader_status(store)["leading"]:
            click.echo(
                "warning: no scheduler is running; the tick starts when one does "
                "(sheetbatch scheduler, or sheetbatch serve)",
                err=True,
            )
        if wait:
            tick = _wait_for_tick(store, tick.tick_id, timeout)
        if as_json:
            _echo_json(tick.to_json())
        else:
            click.echo(f"{tick.tick_id}: {_tick_line(tick.to_json())}")
        if wait and tick.state in (TickState.FAILED, TickState.RUNNING, TickState.QUEUED):
            ctx.exit(1)


def _wait_for_tick(store: Store, tick_id: str, timeout: float) -> Any:
    import time

    deadline = time.monotonic() + timeout
    cursor = store.last_event_id()
    tick = store.tick(tick_id)
    while not tick.state.terminal and time.monotonic() < deadline:
        cursor = max(cursor, store.wait(cursor, min(1.0, max(0.0, deadline - time.monotonic()))))
        tick = store.tick(tick_id)
    return tick


@schedule_group.command("ticks")
@click.argument("schedule_id")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@db_option
@json_option
@click.pass_context
def ticks(ctx: click.Context, schedule_id: str, limit: int, db: str | None, as_json: bool) -> None:
    """The schedule's ticks, newest first (--json: one object per line)."""
    with _store(ctx, db) as (store, _settings):
        row = store.find_schedule(schedule_id)
        for tick in store.ticks(row.schedule_id, limit=limit):
            if as_json:
                _echo_json(tick.to_json())
            else:
                click.echo(f"{tick.tick_id}  {_tick_line(tick.to_json())}")


@schedule_group.command("preview")
@click.argument("schedule_id")
@db_option
@json_option
@click.pass_context
def preview_command(ctx: click.Context, schedule_id: str, db: str | None, as_json: bool) -> None:
    """The rows a tick would select now, without running anything."""
    with _store(ctx, db) as (store, settings):
        row = store.find_schedule(schedule_id)
        try:
            found = preview(store, settings, row)
        except SheetError as exc:  # the sheet cannot be read: the command's bad input
            raise CommandError(str(exc)) from exc
        if as_json:
            _echo_json(found)
            return
        click.echo(f"{found['selected']} of {found['total_rows']} rows would be processed:")
        for r in found["rows"]:
            click.echo(f"  row {r['row']:>5}  {r['status'] or '(new)':<12} {r['label']}")


@click.command("scheduler")
@db_option
@click.option("--allow-host", "allow_host", multiple=True, help="As for `run` (repeatable).")
@click.option("--credentials", type=click.Path(dir_okay=False), help="Google credential file.")
@click.option("--lease-seconds", type=click.FloatRange(0.2, 3600), help="The leader lease TTL.")
@click.option("--shutdown-timeout", type=click.FloatRange(0, 3600), default=25.0, show_default=True)
@click.pass_context
def scheduler_command(
    ctx: click.Context,
    db: str | None,
    allow_host: tuple[str, ...],
    credentials: str | None,
    lease_seconds: float | None,
    shutdown_timeout: float,
) -> None:
    """Run the scheduler in the foreground (any number may run: one leads)."""
    from sheetbatch.notifier import notifier_for
    from sheetbatch.scheduler import Scheduler

    flags: dict[str, Any] = {
        "db": db,
        "credentials": credentials,
        "scheduler_lease_seconds": lease_seconds,
    }
    settings = _settings(ctx, **flags)
    if allow_host:
        settings = _settings(ctx, **flags, allow_hosts=(*settings.allow_hosts, *allow_host))
    declared = declared_schedules((ctx.obj or {}).get("config_files"))
    store = store_for(settings)
    try:
        for name, what in apply_declared(store, settings, declared):
            log.info("config schedule %r: %s", name, what)
        scheduler = Scheduler(store, settings)
        stop = threading.Event()

        def on_signal(_signum: int, _frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        scheduler.start()
        # The scheduler also sends the outbox (claims keep it apart from other senders).
        notifier = notifier_for(store, settings)
        notifier.start()
        # And compacts finished batches (a lease keeps it to one process at a time).
        compactor = Compactor(store, compact_after=settings.compact_after)
        compactor.start()
        click.echo(
            f"sheetbatch scheduler {scheduler.owner} started on {store.url} "
            f"(lease {settings.scheduler_lease_seconds:g} s)",
            err=True,
        )
        while not stop.wait(0.5):
            pass
        click.echo("sheetbatch scheduler stopping", err=True)
        clean = scheduler.stop(shutdown_timeout)
        notifier.stop()
        compactor.stop()
    finally:
        store.close()
    ctx.exit(0 if clean else 1)


COMMANDS = (schedule_group, scheduler_command)
"""The commands `sheetbatch` registers from here."""
