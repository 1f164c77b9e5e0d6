"""`sheetbatch demo`: the main job on the embedded default, with nothing to set up.

Serves the bundled example company websites on 127.0.0.1, copies the example sheet into
`.sheetbatch/demo/` (tracked files are never modified), and runs it with live progress.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from sheetbatch.config import Settings
from sheetbatch.live_run import execute_run
from sheetbatch.sites import SiteServer, render_example_csv

# Package data: the same files in a checkout and in an installed wheel.
EXAMPLES = Path(__file__).resolve().parent / "examples"
DEMO_DIR = Path(".sheetbatch") / "demo"


def run_demo(ctx: click.Context, settings: Settings, *, examples: Path = EXAMPLES) -> int:
    """Run the demo; the exit code of the run (the examples include rows that must fail)."""
    template = examples / "companies.csv"
    if not template.is_file():
        raise click.ClickException(f"the bundled examples are missing: {template}")
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    sheet = DEMO_DIR / "companies.csv"
    with SiteServer(examples / "sites") as server:
        sheet.write_text(render_example_csv(template, server), encoding="utf-8")
        settings = replace(settings, allow_hosts=(*settings.allow_hosts, *server.allow_hosts))
        click.echo(f"example websites served on 127.0.0.1; sheet copied to {sheet}", err=True)
        code = execute_run(
            ctx,
            settings,
            str(sheet),
            pipeline=None,
            retry_failed=False,
            force=True,
            as_json=False,
        )
    click.echo(f"\nopen {sheet.resolve()} to see the statuses and results;", err=True)
    click.echo(
        "`sheetbatch status` shows the batch, `sheetbatch events <batch id>` its log.", err=True
    )
    # Some example rows fail on purpose (a dead site, a blocked private address).
    return 0 if code in (0, 1) else code
