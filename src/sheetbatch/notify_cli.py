"""`sheetbatch notify send | deliveries | redeliver`: the outbox from the command line.

Every command takes `--db` and `--allow-host` as `run` does (a webhook URL on a private or
loopback address is refused unless allowed). `send` delivers every pending notification
now, ignoring backoff timers (exit 0 when all were delivered, 1 otherwise); `deliveries`
lists them with every attempt; `redeliver ID` sends one again with the same `webhook-id`.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, NoReturn

import click

from progress import Store
from progress.deliveries import UnknownNotification
from progress.errors import ProgressError
from progress.notify_model import Delivery, NotifyState
from sheetbatch.config import ConfigError, Settings, load_settings
from sheetbatch.notifier import notifier_for
from sheetbatch.service import store_for

log = logging.getLogger(__name__)

RUN_DELIVERY_SECONDS = 10.0


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _settings(ctx: click.Context, db: str | None, allow_host: tuple[str, ...]) -> Settings:
    files = ctx.obj.get("config_files") if ctx.obj else None
    try:
        settings = load_settings(config_files=files, overrides={"db": db})
        if allow_host:
            hosts = (*settings.allow_hosts, *allow_host)
            settings = load_settings(config_files=files, overrides={"db": db, "allow_hosts": hosts})
    except ConfigError as exc:
        _fail(str(exc))
    return settings


def _store(settings: Settings) -> Store:
    try:
        return store_for(settings, create=False)
    except ProgressError as exc:
        _fail(str(exc))


def deliver_run_notifications(
    store: Store,
    settings: Settings,
    batch_id: str,
    within: float = RUN_DELIVERY_SECONDS,
    *,
    console: Any = None,
) -> bool:
    """`sheetbatch run`'s last step: try the batch's notifications for up to `within`
    seconds (saying so on `console`); what is still pending is left for the next drainer.
    True when none is."""
    pending = store.notifications(batch_id=batch_id, states=[NotifyState.PENDING])
    if not pending:
        return True
    if console is not None:
        what = "1 notification" if len(pending) == 1 else f"{len(pending)} notifications"
        console.print(f"sending {what} (for up to {within:g} s)")
    notifier = notifier_for(store, settings)
    try:
        return notifier.drain_batch(batch_id, within)
    finally:
        notifier.client.close()


def _line(delivery: Delivery) -> str:
    last = delivery.attempts[-1] if delivery.attempts else None
    what = "" if last is None else f"  last: {last['error'] or last['status']}"
    tries = len(delivery.attempts)
    return (
        f"{delivery.id}  {delivery.type:<20} {delivery.state.value:<9} "
        f"{tries} attempt{'s' if tries != 1 else ''}  {delivery.url}{what}"
    )


def _show(deliveries: list[Delivery], as_json: bool) -> None:
    for delivery in deliveries:
        if as_json:
            click.echo(json.dumps(delivery.to_json(), sort_keys=True))
        else:
            click.echo(_line(delivery))


db_option = click.option("--db", help="Progress store URL (sqlite:///path or postgresql://…).")
allow_option = click.option(
    "--allow-host",
    "allow_host",
    multiple=True,
    help="Let webhooks reach this private/loopback HOST[:PORT] or CIDR (repeatable).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")


@click.group("notify")
def notify_group() -> None:
    """Webhook notifications: send the pending ones, list them, send one again."""


@notify_group.command("send")
@db_option
@allow_option
@json_option
@click.pass_context
def send(ctx: click.Context, db: str | None, allow_host: tuple[str, ...], as_json: bool) -> None:
    """Deliver every pending notification now, ignoring backoff (exit 1 if any is not)."""
    settings = _settings(ctx, db, allow_host)
    store = _store(settings)
    try:
        notifier = notifier_for(store, settings)
        try:
            outcome = notifier.drain(ignore_backoff=True)
        finally:
            notifier.client.close()
        _show([store.notification(i) for i in outcome], as_json)
    finally:
        store.close()
    undelivered = [i for i, state in outcome.items() if state is not NotifyState.DELIVERED]
    if not as_json:
        click.echo(f"{len(outcome) - len(undelivered)} of {len(outcome)} delivered", err=True)
    sys.exit(1 if undelivered else 0)


@notify_group.command("deliveries")
@click.option("--batch", "batch_id", help="Only this batch's notifications.")
@db_option
@allow_option
@json_option
@click.pass_context
def deliveries(
    ctx: click.Context,
    batch_id: str | None,
    db: str | None,
    allow_host: tuple[str, ...],
    as_json: bool,
) -> None:
    """List notifications with their state and every attempt (time, status, error, duration)."""
    store = _store(_settings(ctx, db, allow_host))
    try:
        found = store.notifications(batch_id=batch_id)
    finally:
        store.close()
    if not found and not as_json:
        click.echo("no notifications" + (f" for batch {batch_id}" if batch_id else ""))
    _show(found, as_json)


@notify_group.command("redeliver")
@click.argument("notification_id")
@db_option
@allow_option
@json_option
@click.pass_context
def redeliver(
    ctx: click.Context,
    notification_id: str,
    db: str | None,
    allow_host: tuple[str, ...],
    as_json: bool,
) -> None:
    """Send notification ID again now (same webhook-id); exit 1 unless it is delivered."""
    settings = _settings(ctx, db, allow_host)
    store = _store(settings)
    state: Any = None
    try:
        try:
            store.redeliver(notification_id)
        except UnknownNotification as exc:
            _fail(str(exc))
        notifier = notifier_for(store, settings)
        try:
            state = notifier.drain(ids=[notification_id], ignore_backoff=True).get(notification_id)
        finally:
            notifier.client.close()
        _show([store.notification(notification_id)], as_json)
    finally:
        store.close()
    sys.exit(0 if state is NotifyState.DELIVERED else 1)


COMMANDS = (notify_group,)
"""The commands `sheetbatch` registers from here."""
