"""What `sheetbatch run` tells the operator: the batch it starts, what became of every row,
and whether the results reached the sheet. Lines break only between phrases (`console.fit`),
so nothing wraps mid-phrase on a narrow terminal."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

from progress import BatchSnapshot
from sheetbatch.console import count_phrases, fit
from sheetbatch.service import PreparedBatch
from sheets_integration.batch import NothingToDo
from sheets_integration.selection import rows_text
from sheets_integration.writer import WriteOutcome


def written_json(written: WriteOutcome) -> dict[str, Any]:
    """How the final sheet write went, for `--json`."""
    return {
        "written": written.written,
        "unwritten_rows": written.unwritten,
        "missing_rows": written.missing,
        "error": written.error,
        "partial_rows": written.partial,
    }


def _lines(console: Console, phrases: list[str], *, lead: str = "", tail: str = "") -> None:
    lines = fit(phrases, max(40, console.width), lead=lead)
    if tail:
        # The tail belongs to the last phrase: on the same line when it fits.
        joined = f"{lines[-1]} {tail}"
        lines[-1:] = [joined] if len(joined) <= max(40, console.width) else [lines[-1], f"  {tail}"]
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def print_nothing_to_do(console: Console, done: NothingToDo, sheet: str, *, as_json: bool) -> None:
    """Say that no row of `sheet` is to be processed, and why (a JSON object with `as_json`)."""
    selection = done.selection
    if as_json:
        click.echo(
            json.dumps(
                {
                    "batch_id": None,
                    "nothing_to_do": True,
                    "sheet": sheet,
                    "selection": selection.as_json(),
                },
                sort_keys=True,
            )
        )
        return
    reasons = selection.phrases() or ["the sheet has no data rows"]
    _lines(console, reasons, lead=f"nothing to do in {done.sheet}:")


def print_header(console: Console, snap: BatchSnapshot, prepared: PreparedBatch) -> None:
    """The batch starting: its rows, pipeline, and the rows it leaves alone."""
    selection = prepared.selection
    what = [f"{rows_text(snap['total'])} of {snap['sheet']}"]
    if selection.resumed:
        what.append(f"resumed ({rows_text(selection.resumed)} kept, {selection.queued} added)")
    _lines(console, what, lead=f"batch {snap['batch_id']}:")
    phases = " → ".join(p.name for p in prepared.pipeline.phases)
    _lines(console, [f"  pipeline '{prepared.pipeline.name}': {phases}"])
    skipped = selection.phrases()
    if skipped:
        _lines(console, skipped, lead="  not processed:")


def print_summary(
    console: Console, snap: BatchSnapshot, prepared: PreparedBatch, written: WriteOutcome
) -> None:
    """The batch's end: counts, rows left alone, and whether the results are in the sheet."""
    elapsed = snap["elapsed_seconds"] or 0.0
    _lines(console, count_phrases(snap), lead=f"{snap['status']} in {elapsed:.1f}s:")
    skipped = prepared.selection.phrases()
    if skipped:
        _lines(console, skipped, lead="  not processed:")
    sheet = prepared.processor.sheet.name
    if written.written:
        if written.missing:
            _lines(
                console,
                [f"their results are in the store (`sheetbatch status {snap['batch_id']}`)"],
                lead=f"{rows_text(written.missing)} no longer in {sheet} (deleted?):",
            )
        if written.partial:
            have = "has" if written.partial == 1 else "have"
            _lines(
                console,
                [f"{rows_text(written.partial)} {have} cells that could not be written"],
                lead="note:",
                tail="(merged or protected; named in the row's Error cell)",
            )
        console.print(f"results written to {sheet}", highlight=False, markup=False)
        return
    _lines(
        console,
        [written.error or "the sheet could not be written"],
        lead=f"the final statuses of {rows_text(written.unwritten)} were not written to {sheet}:",
    )
    spec = prepared.processor.sheet_spec or sheet
    _lines(
        console,
        [f"run `sheetbatch run {spec}` again to write them"],
        lead="they are kept in the store:",
    )
