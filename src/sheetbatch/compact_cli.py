"""`sheetbatch compact [BATCH_ID]`: compact finished batches now (`compactor.compact_store`).

Without a batch id every finished batch is compacted, whatever its age, and ticks older than
`[store] compact_after` are pruned beyond each schedule's newest ones. It takes the same
lease as the automatic policy, so it never runs at once with a server's or scheduler's pass.
Exit 0 when done (also when nothing was left to compact), 2 for an unknown or still running
batch, a store that cannot be opened, or the lease held by another process.
"""

from __future__ import annotations

import json
import os
import socket

import click

from progress.errors import BatchStillRunning
from progress.schedule_model import Fence
from sheetbatch.cli_errors import CommandError, refuse
from sheetbatch.compactor import LEASE, LEASE_SECONDS, CompactionReport, compact_store
from sheetbatch.config import load_settings
from sheetbatch.service import store_for


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def report_lines(report: CompactionReport) -> list[str]:
    """What the command says: batches compacted, events removed, ticks, bytes before/after."""
    n = len(report.batches)
    lines = [
        f"compacted {n} batch{'' if n == 1 else 'es'}: {report.events_removed:,} events removed"
        if n
        else "nothing to compact: every finished batch is compacted already",
    ]
    lines.extend(f"  {batch_id}" for batch_id in report.batches)
    if report.ticks_pruned:
        lines.append(f"pruned {report.ticks_pruned:,} old ticks")
    lines.append(
        f"store size: {_size(report.bytes_before)} before, {_size(report.bytes_after)} after"
    )
    return lines


@click.command("compact")
@click.argument("batch_id", required=False)
@click.option("--db", help="Progress store URL (sqlite:///path or postgresql://…).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def compact_command(
    ctx: click.Context, batch_id: str | None, db: str | None, as_json: bool
) -> None:
    """Remove the progress reports of finished batches (every transition stays)."""
    files = ctx.obj.get("config_files") if ctx.obj else None
    settings = load_settings(config_files=files, overrides={"db": db})
    store = store_for(settings, create=False)
    owner = f"{socket.gethostname()}:{os.getpid()}:compact-command"
    try:
        epoch = store.acquire_lease(LEASE, owner, LEASE_SECONDS)
        if epoch is None:
            held = store.lease(LEASE)
            raise CommandError(
                f"another process ({held.owner if held else 'unknown'}) is compacting this "
                "store; try again when it is done"
            )
        try:
            report = compact_store(
                store,
                batch_ids=None if batch_id is None else [batch_id],
                tick_window=settings.compact_after,
                guard=Fence(LEASE, owner, epoch),
            )
        except BatchStillRunning as exc:
            raise refuse(exc) from exc
        finally:
            store.release_lease(LEASE, owner)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        for line in report_lines(report):
            click.echo(line)
