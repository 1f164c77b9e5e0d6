"""The HTTP edge's one error map: library exceptions to JSON answers (`install` registers it).

Views raise or let through what the library raises (`UnknownBatch`, `BatchBusy`, a
`SheetError` ...); this map turns each into its `ApiError` - status, code and the request
field at fault - so no view translates errors itself. Flask picks the handler of the most
specific class in an exception's MRO, so `BadColumnMapping` answers as itself although it is
a `SheetError` too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, request

from pipeline.errors import PipelineError
from progress.errors import (
    NoConnectionSlot,
    StoreBusy,
    StoreUnavailable,
    UnknownBatch,
    UnknownJob,
    UnknownSchedule,
)
from sheetbatch.errors import Refused, RunnerClosed, ScheduleError
from sheetbatch.web.errors import ApiError, Conflict, Invalid, NotFound, Unavailable
from sheets_integration.errors import (
    BadColumnMapping,
    BatchBusy,
    ForeignValues,
    MergedTarget,
    SheetError,
)

log = logging.getLogger(__name__)

# exception -> (the answer's kind, the request field at fault). `ScheduleError` names its
# field itself.
ERROR_MAP: dict[type[Exception], tuple[type[ApiError], str | None]] = {
    UnknownJob: (NotFound, "job_id"),
    UnknownBatch: (NotFound, "batch_id"),
    UnknownSchedule: (NotFound, "schedule_id"),
    RunnerClosed: (Unavailable, None),
    StoreUnavailable: (Unavailable, None),
    BatchBusy: (Conflict, "sheet"),
    BadColumnMapping: (Invalid, "output_columns"),
    ForeignValues: (Invalid, "output_columns"),
    MergedTarget: (Invalid, "output_columns"),
    SheetError: (Invalid, "sheet"),
    PipelineError: (Invalid, "pipeline"),
    ScheduleError: (Invalid, None),
    Refused: (Invalid, "sheet"),
}

# Store errors that pass by themselves, with the seconds a client should wait (Retry-After):
# every connection of this process busy, or the database server out of connection slots.
RETRY_AFTER: dict[type[Exception], int] = {StoreBusy: 2, NoConnectionSlot: 5}

# Fields of a new batch's request. On a route about a recorded batch (`batch_id` in its
# path: retry) the sheet and pipeline are the batch's, so the answer names the batch.
_REQUEST_FIELDS = frozenset({"sheet", "pipeline", "output_columns"})


def api_error(exc: Exception, kind: type[ApiError], field: str | None) -> ApiError:
    """The answer for `exc`, raised under this request, as the map says."""
    message = str(exc)
    if isinstance(exc, ScheduleError):
        field = exc.field
    if field in _REQUEST_FIELDS and "batch_id" in (request.view_args or {}):
        field = "batch_id"
        if kind is Invalid:
            message = f"cannot run the batch's sheet again: {message}"
    error = kind(message, field=field)
    error.retry_after = next((s for k, s in RETRY_AFTER.items() if isinstance(exc, k)), None)
    return error


def install(app: Flask, answer: Callable[[ApiError], tuple[Response, int, dict[str, str]]]) -> None:
    """Register the map on `app`; `answer` is how the app answers any `ApiError`."""

    def handle(exc: Exception) -> tuple[Response, int, dict[str, str]]:
        kind, field = _lookup(type(exc))
        error = api_error(exc, kind, field)
        if error.status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc)
        return answer(error)

    for exc_type in ERROR_MAP:
        app.register_error_handler(exc_type, handle)


def _lookup(exc_type: type[Exception]) -> tuple[type[ApiError], str | None]:
    for klass in exc_type.__mro__:
        found = ERROR_MAP.get(klass)
        if found is not None:
            return found
    raise LookupError(exc_type)  # only mapped types reach the handler
