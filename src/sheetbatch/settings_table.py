"""The settings reference: what each setting means, and the README's table made from it.

`python -m sheetbatch.settings_table` prints the table (section, key, environment variables,
default, meaning) from `sheetbatch.config`; `--write README.md` puts it between the README's
markers, `--check README.md` exits 1 when the README's table is not the generated one (a test
does the same, so a setting added without its line here fails the suite).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sheetbatch.config import ENV_NAMES, SECTIONS, Settings, env_variables

#: Setting (a `Settings` field) -> what it is for, one line.
MEANINGS: dict[str, str] = {
    "db": "The progress store: `sqlite:///path/to/file.db` or a `postgresql://` URL.",
    "compact_after": "Seconds after a batch finished that `serve` and `scheduler` compact it "
    "(its progress reports go, every transition stays); ticks older than this are pruned "
    "beyond each schedule's newest 100.",
    "pool_size": "PostgreSQL connections one process holds at most, its LISTEN connection "
    "included; threads beyond wait for one. Size it so that the processes on one server "
    "together stay within `max_connections - superuser_reserved_connections` (SQLite: unused).",
    "pipeline": "The pipeline rows go through: a built-in name or `module:attribute`.",
    "concurrency": "Rows processed at once.",
    "flush_interval": "Seconds between sheet writes while a batch runs (and one at the end).",
    "lease_seconds": "A running job's lease, renewed by heartbeats; an expired one is requeued.",
    "max_attempts": "Attempts of a job whose worker died before it is failed as abandoned.",
    "company_column": "The sheet column holding the company name.",
    "website_column": "The sheet column holding the website.",
    "output_columns": "Where the columns a run writes land: `OUTPUT=COLUMN` pairs.",
    "overwrite": "Sheet columns a run may write although they hold values it did not write.",
    "allow_hosts": "Private or loopback `HOST`, `HOST:PORT` or CIDR the fetcher may reach.",
    "fetch_timeout": "Seconds per fetch request.",
    "max_page_bytes": "The largest page the fetcher reads, in bytes.",
    "max_redirects": "Redirects the fetcher follows for one page.",
    "per_host_concurrency": "Requests at once to one host (politeness).",
    "host": "The address `sheetbatch serve` binds; beyond loopback it needs an API token.",
    "port": "The port `sheetbatch serve` listens on.",
    "ping_interval": "Seconds between heartbeat comments on an event stream.",
    "api_token": "The bearer token for the API, the event streams, /metrics and the dashboard "
    "(16 characters or more); a secret: from the environment only.",
    "sheet_dirs": "Directories whose .csv/.xlsx files the API and the dashboard may use "
    "(none: Google Sheets only).",
    "session_hours": "Hours a dashboard sign-in lasts (signing out ends it at once).",
    "public_url": "The URL users reach the server at; `https://` makes session cookies Secure.",
    "trusted_proxies": "Reverse proxies (IP or CIDR) whose X-Forwarded-For/-Proto are believed.",
    "max_connections": "Connections open at once (capped by the open-file limit); beyond: 503.",
    "header_timeout": "Seconds to send request headers (idle keep-alive too), and again the body.",
    "sheets_api_url": "A Sheets API base URL instead of Google's (emulators, tests).",
    "credentials": "The service-account or authorized-user JSON file for Google Sheets.",
    "read_per_minute": "Google Sheets read requests per minute per credential (client side).",
    "write_per_minute": "Google Sheets write requests per minute per credential (client side).",
    "quota_burst": "Google Sheets requests one credential may send at once before the rate "
    "applies.",
    "scheduler_lease_seconds": "The scheduler leader's lease; a standby takes over within it.",
    "catchup_window": "Seconds: a due time missed this recently runs once when a scheduler starts.",
    "misfire_grace": "Seconds late a due time may start and still count as on time.",
    "pause_after_failures": "Pause a schedule after this many failed ticks in a row (0: never).",
    "scheduler_poll_interval": "Seconds between the scheduler's reads of the schedules table.",
    "sheet_read_attempts": "Attempts of a tick's Google read (429/5xx) before it is "
    "sheet_unreachable.",
    "notify_urls": "Webhook URLs told the outcome of every batch (and schedule tick failures); "
    "Slack incoming-webhook URLs get Slack's format.",
    "notify_events": "The notification types sent (`batch.completed`, `batch.failed`, "
    "`batch.cancelled`, `schedule.tick_failed`, `schedule.missed`).",
    "notify_timeout": "Seconds per webhook delivery attempt.",
    "notify_max_age": "Seconds a notification is retried (backoff with jitter) before it fails.",
    "webhook_secret": "The Standard Webhooks signing secret (`whsec_<base64>`); without it "
    "webhooks go unsigned. A secret: from the environment only.",
    "executor": "Where rows run: `local` (this process's pool) or `celery` (worker processes "
    "through a broker; needs a PostgreSQL store).",
    "broker_url": "The Celery broker (RabbitMQ) for `executor = celery` and `sheetbatch worker`.",
    "redispatch_seconds": "Seconds a queued celery row waits after its nudge before the "
    "reconciler nudges it again.",
}

BEGIN = "<!-- settings table: made by `python -m sheetbatch.settings_table --write README.md` -->"
END = "<!-- end of the settings table -->"


@dataclass(frozen=True)
class Row:
    """One setting as the table shows it."""

    section: str
    key: str
    name: str
    variables: tuple[str, ...]
    default: str
    """As a config file spells it."""
    meaning: str


def rows() -> list[Row]:
    """Every setting: those of the sections in file order, then the environment-only ones.

    Raises KeyError naming a setting that has no line in `MEANINGS`.
    """
    defaults = Settings()
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    variables = env_variables()

    def row(section: str, key: str, name: str) -> Row:
        default = toml_value(getattr(defaults, name), kinds[name])
        return Row(section, key, name, variables[name], default, _meaning(name))

    table = [
        row(section, key, name) for section, keys in SECTIONS.items() for key, name in keys.items()
    ]
    in_files = {name for keys in SECTIONS.values() for name in keys.values()}
    table += [
        row("", "", name) for name in dict.fromkeys(ENV_NAMES.values()) if name not in in_files
    ]
    return table


def _meaning(name: str) -> str:
    try:
        return MEANINGS[name]
    except KeyError:
        raise KeyError(
            f"setting {name!r} has no line in sheetbatch.settings_table.MEANINGS"
        ) from None


def toml_value(value: Any, kind: str) -> str:
    """A value of a setting of `kind` (its annotation) as a config file spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if kind == "tuple[tuple[str, str], ...]":
        return "{" + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return repr(value)


def markdown() -> str:
    """The table, in Markdown."""
    lines = [
        "| section | key | environment | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for row in rows():
        section = f"`[{row.section}]`" if row.section else "(environment only)"
        key = f"`{row.key}`" if row.key else "—"
        variables = ", ".join(f"`{v}`" for v in row.variables)
        cells = [section, key, variables, f"`{row.default}`", row.meaning.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def readme_table(text: str) -> str:
    """The table between the markers of a README's text; ValueError without the markers."""
    try:
        start = text.index(BEGIN) + len(BEGIN)
        end = text.index(END, start)
    except ValueError:
        raise ValueError(
            f"the settings table's markers are missing ({BEGIN!r} … {END!r})"
        ) from None
    return text[start:end].strip("\n") + "\n"


def with_table(text: str) -> str:
    """`text` with the generated table between its markers."""
    readme_table(text)  # the markers are there
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[:start] + "\n" + markdown() + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, write it into a README (`--write`), or check one (`--check`)."""
    parser = argparse.ArgumentParser(prog="python -m sheetbatch.settings_table")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="README", help="update the table there")
    group.add_argument("--check", type=Path, metavar="README", help="exit 1 if it is stale")
    args = parser.parse_args(argv)
    if args.write is not None:
        text = args.write.read_text(encoding="utf-8")
        args.write.write_text(with_table(text), encoding="utf-8")
        return 0
    if args.check is not None:
        if readme_table(args.check.read_text(encoding="utf-8")) != markdown():
            print(f"{args.check}: the settings table is stale; run with --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
