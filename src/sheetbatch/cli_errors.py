"""The command line's one error map: refusals as one `error: ...` line and an exit code.

`CommandError` is the only way a command refuses (exit 2, bad input, by default). The
library errors a command lets through - a bad setting, an unknown id, a store that cannot be
opened, a schedule that cannot be made - are turned into it once, by `CommandGroup`, which
adds the CLI's own words: the store's messages name no flag, so `--db` is said here.
"""

from __future__ import annotations

from typing import Any

import click

from progress.errors import (
    STORE_SETTING,
    SchemaVersionError,
    StoreUnavailable,
    UnknownBatch,
    UnknownJob,
    UnknownSchedule,
)
from sheetbatch.config import ConfigError
from sheetbatch.errors import ScheduleError

EXIT_OK, EXIT_FAILED_ROWS, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130

# What a command may let through: bad input, never a bug (those keep their traceback).
BAD_INPUT: tuple[type[Exception], ...] = (
    ConfigError,
    StoreUnavailable,
    SchemaVersionError,
    UnknownBatch,
    UnknownJob,
    UnknownSchedule,
    ScheduleError,
)


class CommandError(click.ClickException):
    """A command's refusal: `error: <message>` on stderr, then exit `exit_code` (2)."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def command_message(exc: Exception) -> str:
    """The one line the CLI says for a library error, in its own words."""
    text = str(exc)
    if isinstance(exc, StoreUnavailable | SchemaVersionError):
        text = text.replace(STORE_SETTING, "--db")
        if isinstance(exc, StoreUnavailable) and exc.about_url:
            text = f"--db: {text}"
    elif isinstance(exc, UnknownSchedule):
        text = f"{text}; see `sheetbatch schedule list`"
    return text


def refuse(exc: Exception) -> CommandError:
    """`exc` as the command's refusal (raise it `from exc`)."""
    return CommandError(command_message(exc))


class CommandGroup(click.Group):
    """A click group whose commands' bad-input errors end as `CommandError`s."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BAD_INPUT as exc:
            raise refuse(exc) from exc
