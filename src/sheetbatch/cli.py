"""The `sheetbatch` command: a thin click group over the library functions in `service`."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from pipeline.errors import PipelineError
from progress import Store
from progress.errors import ProgressError, UnknownBatch
from sheetbatch import __version__
from sheetbatch.config import ConfigError, Settings, load_settings
from sheetbatch.console import BatchView, run_in_thread, summary_line
from sheetbatch.notify_cli import deliver_run_notifications
from sheetbatch.report import print_header, print_nothing_to_do, print_summary, written_json
from sheetbatch.service import prepare_batch, services_for, store_for
from sheetbatch.webhook_client import webhook_refusal
from sheets_integration.batch import NothingToDo, RunResult
from sheets_integration.errors import SheetError
from sheets_integration.selection import rows_text
from sheets_integration.writer import WriteOutcome

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED_ROWS, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    files = ctx.obj.get("config_files") if ctx.obj else None
    try:
        return load_settings(config_files=files, overrides=overrides)
    except ConfigError as exc:
        _fail(str(exc))


def _open_store(settings: Settings, *, create: bool = True) -> Store:
    try:
        return store_for(settings, create=create)
    except ProgressError as exc:
        _fail(str(exc))


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


@click.group()
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


def execute_run(
    ctx: click.Context,
    settings: Settings,
    sheet: str,
    *,
    pipeline: str | None,
    retry_failed: bool,
    force: bool,
    as_json: bool,
    encoding: str | None = None,
    notify: tuple[str, ...] = (),
) -> int:
    """Run one sheet's batch with live progress; the exit code (0, 1 failed rows, 2 bad input).

    Exit 1 also when the final statuses could not be written into the sheet. The batch's
    notifications are tried for up to 10 s before it returns (the rest stays pending).
    """
    console = Console(stderr=True)
    store = _open_store(settings)
    try:
        with services_for(settings) as services:
            try:
                prepared = prepare_batch(
                    store,
                    settings,
                    sheet,
                    services,
                    pipeline_ref=pipeline,
                    retry_failed=retry_failed,
                    force=force,
                    encoding=encoding,
                    notify=notify,
                )
            except NothingToDo as done:
                print_nothing_to_do(console, done, sheet, as_json=as_json)
                return EXIT_OK
            except (SheetError, PipelineError, ProgressError, ValueError) as exc:
                _fail(str(exc))
            batch_id = prepared.batch_id
            if not as_json:
                print_header(console, store.batch(batch_id), prepared)
            thread, outcome = run_in_thread(prepared.execute)
            interrupted = _follow(store, batch_id, console, thread, quiet=as_json)
            if "error" in outcome:
                raise outcome["error"]
            result: RunResult | None = outcome.get("result")
            final: dict[str, Any] = result.snapshot if result else store.batch(batch_id)
            written = result.written if result else WriteOutcome(written=False)
            if not deliver_run_notifications(store, settings, batch_id):
                console.print("some notifications are pending: `sheetbatch notify send` sends them")
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    **final,
                    "selection": prepared.selection.as_json(),
                    "sheet_written": written_json(written),
                },
                sort_keys=True,
            )
        )
    else:
        print_summary(console, final, prepared, written)
    if interrupted:
        return EXIT_INTERRUPTED
    if not written.written:
        return EXIT_FAILED_ROWS
    return (
        EXIT_OK
        if final["counts"]["failed"] == 0 and final["counts"]["cancelled"] == 0
        else EXIT_FAILED_ROWS
    )


def _follow(store: Store, batch_id: str, console: Console, thread: Any, *, quiet: bool) -> bool:
    """Show progress until the batch thread ends; Ctrl-C cancels cleanly (twice: exit now)."""
    interrupted = False

    def on_sigint(_signum: int, _frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            console.print("[red]interrupted twice: exiting now; run again to resume[/]")
            os._exit(EXIT_INTERRUPTED)
        interrupted = True
        console.print(
            "[yellow]cancelling: running rows stop at their next phase "
            "(Ctrl-C again to exit now)[/]"
        )
        store.cancel_batch(batch_id, "cancelled by Ctrl-C")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        if quiet:
            while thread.is_alive():
                thread.join(0.2)
        else:
            BatchView(store, batch_id, console).follow(lambda: not thread.is_alive())
            thread.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    return interrupted


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
            _fail(f"--notify {url[:80]}: {refusal}")
    sys.exit(
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, batch_id: str | None, db: str | None, as_json: bool) -> None:
    """Show one batch (with its failed rows), or the latest batches."""
    store = _open_store(_settings(ctx, db=db), create=False)
    try:
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
        try:
            snap = store.batch(batch_id)
        except UnknownBatch as exc:
            _fail(str(exc))
        if as_json:
            click.echo(json.dumps(snap, sort_keys=True))
            return
        click.echo(f"{snap['batch_id']}  {snap['status']}  {snap['sheet']}  ({snap['pipeline']})")
        click.echo(f"  {summary_line(snap)}")
        for job in store.jobs(batch_id=batch_id, statuses=["failed", "running"]):
            where = (
                job["error"]
                if job["status"] == "failed"
                else (job.get("phase") or {}).get("name", "")
            )
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
    store = _open_store(_settings(ctx, db=db), create=False)
    try:
        try:
            store.batch(batch_id)
        except UnknownBatch as exc:
            _fail(str(exc))
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
    store = _open_store(_settings(ctx, db=db), create=False)
    try:
        try:
            n = store.cancel_batch(batch_id)
        except UnknownBatch as exc:
            _fail(str(exc))
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
    sys.exit(run_demo(ctx, settings))


def _register_serve() -> None:
    # The server module re-executes itself under gevent; importing it here is cheap.
    from sheetbatch.serve import serve_command

    cli.add_command(serve_command)


_register_serve()

from sheetbatch.notify_cli import COMMANDS as _NOTIFY_COMMANDS  # noqa: E402
from sheetbatch.schedule_cli import COMMANDS as _SCHEDULE_COMMANDS  # noqa: E402

for _command in (*_SCHEDULE_COMMANDS, *_NOTIFY_COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="sheetbatch")
