"""The `sheetbatch` command: a thin click group over the library functions in `service`."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from progress import JobStatus
from sheetbatch import __version__
from sheetbatch.cli_errors import CommandError, CommandGroup
from sheetbatch.config import Settings, load_settings
from sheetbatch.console import summary_line
from sheetbatch.live_run import execute_run
from sheetbatch.malloc_arenas import limit_malloc_arenas
from sheetbatch.service import store_for
from sheetbatch.webhook_client import webhook_refusal
from sheetbatch.worker_cli import print_workers, worker_command
from sheets_integration.selection import rows_text

log = logging.getLogger(__name__)


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    files = ctx.obj.get("config_files") if ctx.obj else None
    return load_settings(config_files=files, overrides=overrides)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # A dead site is the row's failure, already in the sheet; not a warning for the console.
    logging.getLogger("pipeline.job").setLevel(max(level, logging.WARNING))


db_option = click.option("--db", help="Progress store URL (sqlite:///path or postgresql://…).")
executor_option = click.option(
    "--executor",
    type=click.Choice(["local", "celery"]),
    help="Where rows run: this process (local) or `sheetbatch worker` processes (celery).",
)
broker_option = click.option(
    "--broker", help="The Celery broker URL (amqp://…) for --executor celery."
)


@click.group(cls=CommandGroup)
@click.version_option(__version__, prog_name="sheetbatch")
@click.option(
    "--config",
    "config_files",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Config file(s) read instead of config/*.toml.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, config_files: tuple[Path, ...], verbose: int) -> None:
    """sheetbatch: every row of a sheet a job, every transition durable and visible live."""
    ctx.ensure_object(dict)
    ctx.obj["config_files"] = list(config_files) or None
    _configure_logging(verbose)


@cli.command()
@click.argument("sheet")
@click.option("--pipeline", help="Pipeline name (company) or module:attribute.")
@click.option("--concurrency", type=click.IntRange(1, 512), help="Rows processed at once.")
@db_option
@click.option(
    "--allow-host",
    "allow_host",
    multiple=True,
    help="Let the fetcher reach this private/loopback HOST[:PORT] or CIDR (repeatable).",
)
@click.option("--retry-failed", is_flag=True, help="Also process rows whose status is failed.")
@click.option("--force", is_flag=True, help="Process every row again, whatever its status.")
@click.option("--flush-interval", type=float, help="Seconds between sheet writes.")
@click.option("--company-column", help="The sheet column with the company name (default Company).")
@click.option("--website-column", help="The sheet column with the website (default Website).")
@click.option(
    "--output-column",
    "output_column",
    multiple=True,
    metavar="OUTPUT=COLUMN",
    help="Write an output (or Status, Job ID, Updated, Error) into another column, e.g. "
    'Name="Found name" (repeatable).',
)
@click.option(
    "--overwrite",
    multiple=True,
    metavar="COLUMN",
    help="Let the run write into this existing column although it holds values sheetbatch "
    "did not write (repeatable).",
)
@click.option(
    "--encoding",
    help="The text encoding of a CSV file, e.g. cp1252 (default: UTF-8, with or without BOM).",
)
@click.option(
    "--credentials",
    type=click.Path(dir_okay=False),
    help="Google service-account (or authorized-user) JSON file, for Google Sheets.",
)
@executor_option
@broker_option
@click.option(
    "--notify",
    multiple=True,
    metavar="URL",
    help="Webhook URL told the batch's outcome (repeatable; adds to [notify] urls).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the final batch snapshot as JSON.")
@click.pass_context
def run(
    ctx: click.Context,
    sheet: str,
    pipeline: str | None,
    concurrency: int | None,
    db: str | None,
    allow_host: tuple[str, ...],
    retry_failed: bool,
    force: bool,
    flush_interval: float | None,
    company_column: str | None,
    website_column: str | None,
    output_column: tuple[str, ...],
    overwrite: tuple[str, ...],
    encoding: str | None,
    credentials: str | None,
    executor: str | None,
    broker: str | None,
    notify: tuple[str, ...],
    as_json: bool,
) -> None:
    """Process the rows of SHEET with live progress.

    SHEET is a .csv file, an .xlsx file (file.xlsx#Worksheet for another tab than the first),
    or a Google Sheet: its URL, its key, or KEY/Worksheet title.
    """
    flags: dict[str, Any] = {
        "db": db,
        "concurrency": concurrency,
        "flush_interval": flush_interval,
        "credentials": credentials,
        "company_column": company_column,
        "website_column": website_column,
        "executor": executor,
        "broker_url": broker,
    }
    settings = _settings(ctx, **flags)
    # --allow-host, --output-column and --overwrite add to what the configuration says
    # (an --output-column for an output the configuration maps wins).
    added: dict[str, Any] = {}
    if allow_host:
        added["allow_hosts"] = (*settings.allow_hosts, *allow_host)
    if output_column:
        added["output_columns"] = (
            *(f"{o}={c}" for o, c in settings.output_columns),
            *output_column,
        )
    if overwrite:
        added["overwrite"] = (*settings.overwrite, *overwrite)
    if added:
        settings = _settings(ctx, **flags, **added)
    for url in notify:
        refusal = webhook_refusal(url, settings.allow_hosts)
        if refusal is not None:
            raise CommandError(f"--notify {url[:80]}: {refusal}")
    ctx.exit(
        execute_run(
            ctx,
            settings,
            sheet,
            pipeline=pipeline,
            retry_failed=retry_failed,
            force=force,
            as_json=as_json,
            encoding=encoding,
            notify=notify,
        )
    )


@cli.command()
@click.argument("batch_id", required=False)
@db_option
@click.option("--workers", "workers", is_flag=True, help="List the distributed workers instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(
    ctx: click.Context, batch_id: str | None, db: str | None, workers: bool, as_json: bool
) -> None:
    """Show one batch (with its failed rows), the latest batches, or the workers."""
    store = store_for(_settings(ctx, db=db), create=False)
    try:
        if workers:
            print_workers(store, as_json=as_json)
            return
        if batch_id is None:
            batches = store.batches(limit=20)
            if as_json:
                click.echo(json.dumps(batches, sort_keys=True))
                return
            if not batches:
                click.echo("no batches yet")
            for b in batches:
                click.echo(f"{b['batch_id']}  {b['status']:<9}  {summary_line(b)}  {b['sheet']}")
            return
        snap = store.batch(batch_id)
        if as_json:
            click.echo(json.dumps(snap, sort_keys=True))
            return
        click.echo(f"{snap['batch_id']}  {snap['status']}  {snap['sheet']}  ({snap['pipeline']})")
        click.echo(f"  {summary_line(snap)}")
        for job in store.jobs(batch_id=batch_id, statuses=[JobStatus.FAILED, JobStatus.RUNNING]):
            phase = job["phase"]
            if job["status"] is JobStatus.FAILED:
                where = job["error"] or ""
            else:
                where = phase["name"] if phase else ""
            click.echo(f"  row {job['row']:>5}  {job['status']:<9} {job['label']}: {where}")
    finally:
        store.close()


@cli.command()
@click.argument("batch_id")
@click.option("--after", type=int, default=0, show_default=True, help="Only events after this id.")
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def events(ctx: click.Context, batch_id: str, after: int, db: str | None, as_json: bool) -> None:
    """Print a batch's events from the log, oldest first."""
    store = store_for(_settings(ctx, db=db), create=False)
    try:
        store.batch(batch_id)  # UnknownBatch: said by the group, exit 2
        cursor = after
        while True:
            page = store.events_after(cursor, batch_id=batch_id, limit=2000)
            if not page:
                break
            for event in page:
                if as_json:
                    click.echo(json.dumps(event, sort_keys=True))
                else:
                    data = event["data"]
                    click.echo(
                        f"{event['id']:>8}  {event['time']}  {event['type']:<22} "
                        f"{event['job_id'] or '':<18}  {json.dumps(data, sort_keys=True)}"
                    )
            cursor = page[-1]["id"]
    finally:
        store.close()


@cli.command()
@click.argument("batch_id")
@db_option
@click.pass_context
def cancel(ctx: click.Context, batch_id: str, db: str | None) -> None:
    """Cancel a batch: queued rows at once, running rows at their next phase."""
    store = store_for(_settings(ctx, db=db), create=False)
    try:
        n = store.cancel_batch(batch_id)
        click.echo(f"{batch_id}: cancel requested ({rows_text(n)} queued cancelled)")
    finally:
        store.close()


@cli.command()
@db_option
@click.option("--concurrency", type=click.IntRange(1, 512), help="Rows processed at once.")
@click.pass_context
def demo(ctx: click.Context, db: str | None, concurrency: int | None) -> None:
    """Run the bundled example: example company websites served on 127.0.0.1."""
    from sheetbatch.demo import run_demo

    settings = _settings(ctx, db=db, concurrency=concurrency, flush_interval=0.5)
    ctx.exit(run_demo(ctx, settings))


def _register_serve() -> None:
    # The server module re-executes itself under gevent; importing it here is cheap.
    from sheetbatch.serve import serve_command

    cli.add_command(serve_command)


_register_serve()

from sheetbatch.compact_cli import compact_command  # noqa: E402
from sheetbatch.notify_cli import COMMANDS as _NOTIFY_COMMANDS  # noqa: E402
from sheetbatch.schedule_cli import COMMANDS as _SCHEDULE_COMMANDS  # noqa: E402

cli.add_command(worker_command)
cli.add_command(compact_command)

for _command in (*_SCHEDULE_COMMANDS, *_NOTIFY_COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    limit_malloc_arenas()  # before any thread starts
    cli(prog_name="sheetbatch")
