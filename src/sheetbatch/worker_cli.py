"""`sheetbatch worker`: a Celery worker consuming rows; `status --workers` lists them.

Not to be confused with `sheetbatch.worker` (the server's per-batch process): this one
serves the whole cluster, taking nudges from the broker and running one fenced attempt per
row (`sheetbatch.distributed`).
"""

from __future__ import annotations

import json
import logging
import sys
from functools import partial
from typing import Any, NoReturn

import click

from progress import Store
from progress.engine import is_sqlite
from progress.errors import ProgressError
from progress.snapshots import iso
from sheetbatch.config import ConfigError, Settings, load_settings
from sheetbatch.errors import BrokerUnavailable
from sheetbatch.service import store_for

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    files = ctx.obj.get("config_files") if ctx.obj else None
    try:
        return load_settings(config_files=files, overrides=overrides)
    except ConfigError as exc:
        _fail(str(exc))


@click.command("worker")
@click.option("--db", help="Progress store URL (postgresql://…; shared by the whole cluster).")
@click.option("--broker", help="The Celery broker URL (default [executor] broker_url).")
@click.option("--concurrency", type=click.IntRange(1, 512), help="Rows run at once (threads).")
@click.option("--name", help="This worker's name in `sheetbatch status --workers`.")
@click.pass_context
def worker_command(
    ctx: click.Context,
    db: str | None,
    broker: str | None,
    concurrency: int | None,
    name: str | None,
) -> None:
    """Run rows dispatched by `run --executor celery` (and the API, schedules) on this machine."""
    settings = _settings(ctx, db=db, broker_url=broker, concurrency=concurrency)
    try:
        store = store_for(settings)
    except ProgressError as exc:
        _fail(str(exc))
    try:
        if is_sqlite(store.engine):
            _fail(
                "a worker needs a PostgreSQL store (--db postgresql://…) shared with the "
                "processes that dispatch rows; a SQLite file is one machine's"
            )
        sys.exit(_serve_rows(store, settings, name))
    finally:
        store.close()


def _serve_rows(store: Store, settings: Settings, name: str | None) -> int:
    from sheetbatch.celery_app import QUEUE, check_broker, create_celery, publish
    from sheetbatch.distributed import RowWorker, worker_owner
    from sheetbatch.reconciler import Reconciler
    from sheetbatch.service import services_for

    owner = worker_owner(name)
    holder: list[RowWorker] = []
    app = create_celery(settings.broker_url, run_row=lambda job_id: holder[0].run_row(job_id))
    try:
        check_broker(app)
    except BrokerUnavailable as exc:
        _fail(str(exc))
    with services_for(settings) as services:
        reconciler = Reconciler(
            store,
            partial(publish, app),
            owner=owner,
            lease_seconds=settings.lease_seconds,
            redispatch_seconds=settings.redispatch_seconds,
            max_attempts=settings.max_attempts,
        )
        rows = RowWorker(
            store,
            services,
            reconciler,
            owner=owner,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
        )
        holder.append(rows)
        rows.start()
        log.warning("worker %s consuming %s (%d threads)", owner, QUEUE, settings.concurrency)
        try:
            worker = app.Worker(
                pool_cls="threads",
                concurrency=settings.concurrency,
                queues=[QUEUE],
                hostname=f"{owner.rsplit(':', 1)[-1]}@%h",
                without_gossip=True,
                without_mingle=True,
                without_heartbeat=True,
                quiet=True,
                loglevel=logging.getLogger().getEffectiveLevel(),
            )
            worker.start()
            return int(worker.exitcode or 0)
        finally:
            rows.stop()


def print_workers(store: Store, *, as_json: bool) -> None:
    """The distributed workers the registry knows, live ones first, with rows in flight."""
    workers = store.workers()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "owner": w.owner,
                        "alive": w.alive,
                        "renewed": iso(w.renewed),
                        "running": w.running,
                    }
                    for w in workers
                ],
                sort_keys=True,
            )
        )
        return
    if not workers:
        click.echo("no workers")
    for w in workers:
        state = "alive" if w.alive else "gone"
        click.echo(f"{w.owner}  {state:<5}  {w.running} rows running  (seen {iso(w.renewed)})")
