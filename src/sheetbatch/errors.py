"""The exception tree of the composition root (configuration, schedules, the server's runner,
the executors and the broker).

Every error `sheetbatch` itself raises is a `SheetbatchError`; the layers below raise their
own roots (`SheetError`, `PipelineError`, `ProgressError`). The edges turn them into answers
in one place each: `sheetbatch.web.error_map` for HTTP, `sheetbatch.cli_errors` for commands.
"""

from __future__ import annotations


class SheetbatchError(Exception):
    """Root of every error the `sheetbatch` package raises."""


class RunnerClosed(SheetbatchError):
    """The server's batch runner is shutting down and takes no new batch."""


class ScheduleError(SheetbatchError, ValueError):
    """Input a schedule cannot be made of; `field` names the option or key at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class Refused(SheetbatchError, ValueError):
    """A batch request a worker refused as invalid (an option it cannot act on)."""


class BrokerUnavailable(SheetbatchError):
    """The Celery broker could not be reached, or refused a message."""


class ExecutorRefused(SheetbatchError):
    """The chosen executor cannot run with this store (celery needs PostgreSQL)."""
