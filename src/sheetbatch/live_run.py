"""Running one sheet's batch in the foreground with live progress: `sheetbatch run` and
`sheetbatch demo` both end here, and the exit code says how it went."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import click
from rich.console import Console

from pipeline.errors import PipelineError
from progress import BatchSnapshot, Store
from progress.errors import ProgressError
from sheetbatch.cli_errors import (
    EXIT_FAILED_ROWS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CommandError,
    command_message,
)
from sheetbatch.config import Settings
from sheetbatch.console import BatchView, run_in_thread
from sheetbatch.errors import SheetbatchError
from sheetbatch.notify_cli import deliver_run_notifications
from sheetbatch.report import print_header, print_nothing_to_do, print_summary, written_json
from sheetbatch.service import prepare_batch, services_for, store_for
from sheets_integration.batch import NothingToDo, RunResult
from sheets_integration.errors import SheetError
from sheets_integration.writer import WriteOutcome


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
    store = store_for(settings)
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
            except (SheetError, PipelineError, ProgressError, SheetbatchError, ValueError) as exc:
                # The preparation refused the sheet: nothing was written.
                raise CommandError(command_message(exc)) from exc
            batch_id = prepared.batch_id
            if not as_json:
                print_header(console, store.batch(batch_id), prepared)
            thread, outcome = run_in_thread(prepared.execute)
            interrupted = _follow(store, batch_id, console, thread, quiet=as_json)
            if "error" in outcome:
                raise outcome["error"]
            result: RunResult | None = outcome.get("result")
            final: BatchSnapshot = result.snapshot if result else store.batch(batch_id)
            written = result.written if result else WriteOutcome(written=False)
            if not as_json:
                # The outcome first: the notifications may take a few seconds more.
                print_summary(console, final, prepared, written)
            if not deliver_run_notifications(store, settings, batch_id, console=console):
                console.print(
                    "some notifications are still pending: `sheetbatch notify send` sends "
                    "them, as does a running `sheetbatch serve` or `sheetbatch scheduler`"
                )
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
