"""Settings, loaded in a fixed order: defaults → config/*.toml → SHEETBATCH_* → flags.

Every key of every section can also come from the environment as
`SHEETBATCH_<SECTION>_<KEY>` (`[run] lease_seconds` is `SHEETBATCH_RUN_LEASE_SECONDS`); the
older short names in `ENV_NAMES` stay as aliases, and secrets come only from there. Lists are
comma-separated, mappings `OUTPUT=COLUMN,...`. Every setting is validated once; an error
names the key and where its value came from (the file and key, or the variable).

A new `[section]` needs its `Settings` fields, its `SECTIONS` entry and a line per key in
`sheetbatch.settings_table.MEANINGS` (the README's table is generated from them).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from progress.budget import DEFAULT_POOL_SIZE
from sheetbatch.errors import SheetbatchError

# Every notification type (progress.notify_model.NotifyEvent), the default of [notify] events.
NOTIFY_EVENTS = (
    "batch.completed",
    "batch.failed",
    "batch.cancelled",
    "schedule.tick_failed",
    "schedule.missed",
)


class ConfigError(SheetbatchError):
    """A setting is missing, unknown or of the wrong kind; the message names key and source."""


@dataclass(frozen=True)
class Settings:
    """Every setting of sheetbatch, with its default."""

    # [store]
    db: str = "sqlite:///.sheetbatch/progress.db"
    compact_after: float = 86400.0  # seconds after a batch finished that it is compacted
    pool_size: int = DEFAULT_POOL_SIZE  # PostgreSQL connections one process holds at most
    # [run]
    pipeline: str = "company"
    concurrency: int = 8
    flush_interval: float = 2.0
    lease_seconds: float = 30.0
    max_attempts: int = 3
    company_column: str = "Company"
    website_column: str = "Website"
    # [sheet]
    #: Written column (output or bookkeeping) -> the sheet column it lands in.
    output_columns: tuple[tuple[str, str], ...] = ()
    #: Sheet columns a run may write although they hold values sheetbatch did not write.
    overwrite: tuple[str, ...] = ()
    # [fetch]
    allow_hosts: tuple[str, ...] = ()
    fetch_timeout: float = 10.0
    max_page_bytes: int = 2_000_000
    max_redirects: int = 5
    per_host_concurrency: int = 2
    # [server]
    host: str = "127.0.0.1"
    port: int = 8000
    ping_interval: float = 15.0
    api_token: str = field(default="", repr=False)
    # [server], continued: what the web service may touch and how it holds up (issue 9)
    sheet_dirs: tuple[str, ...] = ()  # local sheets the API/dashboard may use (none: Google only)
    session_hours: float = 12.0  # a dashboard sign-in lasts this long (logout ends it at once)
    public_url: str = ""  # https://... : session cookies are Secure
    trusted_proxies: tuple[str, ...] = ()  # proxies whose X-Forwarded-For/-Proto are believed
    max_connections: int = 1000  # open connections at once; beyond: 503
    header_timeout: float = 10.0  # seconds to send a request's headers (and keep-alive idle)
    # [google]
    sheets_api_url: str = ""
    credentials: str = ""
    read_per_minute: int = 50
    write_per_minute: int = 50
    quota_burst: int = 5
    # [scheduler]
    scheduler_lease_seconds: float = 30.0
    catchup_window: float = 3600.0
    misfire_grace: float = 60.0
    pause_after_failures: int = 0
    scheduler_poll_interval: float = 1.0
    sheet_read_attempts: int = 3
    # [notify]
    notify_urls: tuple[str, ...] = ()
    notify_events: tuple[str, ...] = NOTIFY_EVENTS
    notify_timeout: float = 10.0
    notify_max_age: float = 86400.0
    webhook_secret: str = field(default="", repr=False)
    # [executor]
    executor: str = "local"
    broker_url: str = field(default="amqp://guest:guest@127.0.0.1:5672//", repr=False)
    redispatch_seconds: float = 300.0


# config file layout: section -> {key in file: Settings field}
SECTIONS: dict[str, dict[str, str]] = {
    "store": {"url": "db", "compact_after": "compact_after", "pool_size": "pool_size"},
    "run": {
        "pipeline": "pipeline",
        "concurrency": "concurrency",
        "flush_interval": "flush_interval",
        "lease_seconds": "lease_seconds",
        "max_attempts": "max_attempts",
        "company_column": "company_column",
        "website_column": "website_column",
    },
    "sheet": {"output_columns": "output_columns", "overwrite": "overwrite"},
    "fetch": {
        "allow_hosts": "allow_hosts",
        "timeout": "fetch_timeout",
        "max_page_bytes": "max_page_bytes",
        "max_redirects": "max_redirects",
        "per_host_concurrency": "per_host_concurrency",
    },
    "server": {
        "host": "host",
        "port": "port",
        "ping_interval": "ping_interval",
        "sheet_dirs": "sheet_dirs",
        "session_hours": "session_hours",
        "public_url": "public_url",
        "trusted_proxies": "trusted_proxies",
        "max_connections": "max_connections",
        "header_timeout": "header_timeout",
    },
    "google": {
        "api_url": "sheets_api_url",
        "credentials": "credentials",
        "read_per_minute": "read_per_minute",
        "write_per_minute": "write_per_minute",
        "burst": "quota_burst",
    },
    "scheduler": {
        "lease_seconds": "scheduler_lease_seconds",
        "catchup_window": "catchup_window",
        "misfire_grace": "misfire_grace",
        "pause_after_failures": "pause_after_failures",
        "poll_interval": "scheduler_poll_interval",
        "sheet_read_attempts": "sheet_read_attempts",
    },
    "notify": {
        "urls": "notify_urls",
        "events": "notify_events",
        "timeout": "notify_timeout",
        "max_age": "notify_max_age",
    },
    "executor": {
        "kind": "executor",
        "broker_url": "broker_url",
        "redispatch_seconds": "redispatch_seconds",
    },
}
#: Where a batch's rows run: this process's pool, or Celery workers (PostgreSQL store only).
EXECUTORS = ("local", "celery")
# Array-of-tables sections read elsewhere: [[schedule]] (sheetbatch.schedule_config).
LIST_SECTIONS = frozenset({"schedule"})
# Settings where 0 means "off".
_ZERO_ALLOWED = frozenset({"port", "pause_after_failures"})

# Environment variables with their own well-known names.
ENV_NAMES: dict[str, str] = {
    "SHEETBATCH_DB": "db",
    "SHEETBATCH_ALLOW_HOSTS": "allow_hosts",
    "SHEETBATCH_API_TOKEN": "api_token",
    "SHEETBATCH_SHEETS_API_URL": "sheets_api_url",
    "GOOGLE_APPLICATION_CREDENTIALS": "credentials",
    "SHEETBATCH_PIPELINE": "pipeline",
    "SHEETBATCH_CONCURRENCY": "concurrency",
    "SHEETBATCH_FLUSH_INTERVAL": "flush_interval",
    "SHEETBATCH_HOST": "host",
    "SHEETBATCH_PORT": "port",
    "SHEETBATCH_PING_INTERVAL": "ping_interval",
    "SHEETBATCH_WEBHOOK_SECRET": "webhook_secret",
}

_TYPES = {f.name: f.type for f in fields(Settings)}
_PAIRS = "tuple[tuple[str, str], ...]"


def env_variable(section: str, key: str) -> str:
    """The environment variable of `[section] key`: SHEETBATCH_<SECTION>_<KEY>."""
    return f"SHEETBATCH_{section}_{key}".upper()


def env_variables() -> dict[str, tuple[str, ...]]:
    """Setting -> the environment variables that set it: the full name first (it wins
    when several are set), then its aliases from `ENV_NAMES`."""
    names: dict[str, list[str]] = {}
    for section, keys in SECTIONS.items():
        for key, name in keys.items():
            names.setdefault(name, []).append(env_variable(section, key))
    for variable, name in ENV_NAMES.items():
        if variable not in names.setdefault(name, []):
            names[name].append(variable)
    return {name: tuple(variables) for name, variables in names.items()}


# How each setting is spelled on the command line, for messages about a flag's value.
FLAGS: dict[str, str] = {
    "allow_hosts": "--allow-host",
    "output_columns": "--output-column",
    "overwrite": "--overwrite",
    "notify_urls": "--notify",
}


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """OUTPUT -> COLUMN pairs from a TOML table, "OUTPUT=COLUMN" strings or a comma list."""
    if isinstance(value, dict):
        items = list(value.items())
    else:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError
        items = []
        for entry in value:
            if isinstance(entry, (list, tuple)) and len(entry) == 2:
                items.append((entry[0], entry[1]))
            elif isinstance(entry, str) and "=" in entry:
                output, _, column = entry.partition("=")
                items.append((output, column))
            else:
                raise ValueError
    pairs: list[tuple[str, str]] = []
    for output, column in items:
        if not isinstance(output, str) or not isinstance(column, str):
            raise ValueError
        if not output.strip() or not column.strip():
            raise ValueError
        pairs.append((output.strip(), column.strip()))
    return tuple(pairs)


def _bool(value: Any) -> bool:
    """A TOML boolean, or its spelling in the environment (true/false, 1/0, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
    raise ValueError


def _check_hosts(hosts: tuple[str, ...], source: str) -> None:
    # Imported on use: the fetcher's policy is the one authority on what an entry may be.
    from pipeline.guard import HostPolicy

    try:
        HostPolicy(hosts)
    except ValueError as exc:
        raise ConfigError(f"{source}: {str(exc).removeprefix('allow_hosts: ')}") from exc


def _check_secret(secret: str, source: str) -> None:
    import base64
    import binascii

    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith("whsec_") or len(key) < 16:
        raise ConfigError(
            f"{source}: a webhook secret is whsec_ and the base64 of 16 to 64 random bytes"
        )


def _label(name: str) -> str:
    """How a message names a setting: as a config file spells it (`[run] lease_seconds`)."""
    for section, keys in SECTIONS.items():
        for key, field_name in keys.items():
            if field_name == name:
                return f"[{section}] {key}"
    return name


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _TYPES[name]
    # A flag's message names the flag (the source) and the setting as it always did.
    label = name if source.startswith("--") else _label(name)
    try:
        if kind == "int":
            # `int()` would cut a TOML 2.5 down to 2 without a word.
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            result: Any = int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
        elif kind == "str":
            if not isinstance(value, str):
                raise ValueError
            result = value
        elif kind == "bool":
            result = _bool(value)
        elif kind == _PAIRS:
            result = _pairs(value)
        else:  # tuple[str, ...]
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",")]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError
            result = tuple(v for v in value if v)
    except (TypeError, ValueError) as exc:
        if kind == _PAIRS:
            raise ConfigError(
                f"{source}: {label} must map outputs to columns (OUTPUT=COLUMN, or a TOML "
                f'table such as {{Name = "Found name"}}), not {value!r}'
            ) from exc
        raise ConfigError(f"{source}: {label} must be {kind}, not {value!r}") from exc
    if name == "allow_hosts":
        _check_hosts(result, source)
    if name == "notify_events":
        for event in result:
            if event not in NOTIFY_EVENTS:
                raise ConfigError(
                    f"{source}: unknown notification type {event!r} "
                    f"(known: {', '.join(NOTIFY_EVENTS)})"
                )
    if name == "notify_urls":
        for url in result:
            if not url.lower().startswith(("http://", "https://")):
                raise ConfigError(f"{source}: {url[:60]!r} is not an http(s) URL")
    if name == "webhook_secret" and result:
        _check_secret(result, source)
    if name == "executor" and result not in EXECUTORS:
        raise ConfigError(
            f"{source}: executor must be one of {', '.join(EXECUTORS)}, not {value!r}"
        )
    if kind in ("int", "float") and (result < 0 or (result == 0 and name not in _ZERO_ALLOWED)):
        raise ConfigError(f"{source}: {label} must be greater than 0, not {value!r}")
    return result


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section in LIST_SECTIONS:
            continue
        keys = SECTIONS.get(section)
        if keys is None or not isinstance(table, dict):
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
        for key, value in table.items():
            if key not in keys:
                raise ConfigError(f"{path}: unknown key {section}.{key} (known: {', '.join(keys)})")
            name = keys[key]
            values[name] = _coerce(name, value, f"{path}: {section}.{key}")
    return values


def config_paths(config_files: list[Path] | None = None) -> list[Path]:
    """The config files in use: those given, else `config/*.toml` in name order."""
    if config_files is not None:
        return list(config_files)
    return sorted(Path("config").glob("*.toml")) if Path("config").is_dir() else []


def load_settings(
    *,
    config_files: list[Path] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from defaults, then config files, then environment, then flags (`overrides`).

    Without `config_files`, `config/*.toml` in the current directory are read in name order.
    """
    environ = os.environ if environ is None else environ
    config_files = config_paths(config_files)
    values: dict[str, Any] = {}
    for path in config_files:
        values.update(_from_file(path))
    for name, variables in env_variables().items():
        # An empty variable counts as unset; the full name wins over an alias.
        variable = next((v for v in variables if environ.get(v)), None)
        if variable is not None:
            values[name] = _coerce(name, environ[variable], f"environment {variable}")
    for name, value in (overrides or {}).items():
        if value is None or value == ():
            continue
        if name not in _TYPES:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(name, value, FLAGS.get(name, f"--{name.replace('_', '-')}"))
    return replace(Settings(), **values)
