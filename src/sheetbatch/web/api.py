"""The REST API (`/api/*`): thin views over the store and the batch runner.

Reads answer the store's snapshots unchanged; writes call the same library functions as the
CLI. Malformed input is a 400 and well-formed input the server cannot act on a 422, both as
`{"error", "code", "field"}` naming the offending field; the library's errors answer through
the app's one map (`error_map`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify, request, url_for

from pipeline.registry import builtin_names
from progress.schema import ID_PATTERN
from progress.snapshots import BatchSnapshot
from progress.status import BatchStatus, JobStatus
from sheetbatch.web.context import web_context
from sheetbatch.web.errors import BadRequest, Invalid
from sheetbatch.web.offload import offload
from sheetbatch.web.openapi import openapi_document
from sheetbatch.web.sheets import is_google
from sheetbatch.webhook_client import webhook_refusal
from sheets_integration.selection import NothingToDo

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

_ID = re.compile(ID_PATTERN)
MAX_PAGE = 500
MAX_SHEET_SPEC = 4096
BATCH_FIELDS: Mapping[str, type] = {
    "sheet": str,
    "pipeline": str,
    "retry_failed": bool,
    "force": bool,
    "output_columns": dict,
    "overwrite": list,
    "notify": list,
}
MAX_COLUMN_NAME = 200
MAX_NOTIFY_URLS = 10


def valid_id(value: str, field: str) -> str:
    """`value` when it is a well-formed job or batch id; else a 400 naming `field`."""
    if not _ID.fullmatch(value):
        raise BadRequest(f"{field} must match {ID_PATTERN}", field=field)
    return value


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or not raw.isascii():
        raise BadRequest(f"{name} must be an integer from {low} to {high}", field=name)
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}", field=name)
    return value


S = TypeVar("S", bound=StrEnum)


def _statuses(kind: type[S]) -> list[S] | None:
    raw = request.args.getlist("status")
    if not raw:
        return None
    allowed = {s.value: s for s in kind}
    values = [v.strip() for text in raw for v in text.split(",")]
    for value in values:
        if value not in allowed:
            raise BadRequest(
                f"status must be one of {', '.join(sorted(allowed))}, not {value[:40]!r}",
                field="status",
            )
    return [allowed[v] for v in values]


def _batch_urls(batch_id: str) -> dict[str, str]:
    return {
        "self": url_for("api.batch", batch_id=batch_id),
        "jobs": url_for("api.progress_all", batch_id=batch_id),
        "events": url_for("events.batch_events", batch_id=batch_id),
        "cancel": url_for("api.cancel", batch_id=batch_id),
        "retry": url_for("api.retry", batch_id=batch_id),
        "dashboard": url_for("dashboard.batch_page", batch_id=batch_id),
    }


def _snapshot_of_batch(batch_id: str) -> BatchSnapshot:
    return offload(web_context().store.batch, batch_id)


# ---------------------------------------------------------------------- progress
@bp.get("/progress/current")
def progress_current() -> Response:
    """The running batches, each with its running jobs; an empty list when idle."""
    store = web_context().store

    def read() -> tuple[int, list[dict[str, Any]]]:
        cursor = store.last_event_id()
        out = []
        for batch in store.batches(status=BatchStatus.RUNNING, limit=1000):
            running = store.jobs(batch_id=batch["batch_id"], statuses=[JobStatus.RUNNING])
            out.append({**batch, "running_jobs": running})
        return cursor, out

    cursor, out = offload(read)
    return jsonify({"batches": out, "cursor": cursor})


@bp.get("/progress/all")
def progress_all() -> Response:
    """Jobs ordered by (batch, row), filtered by `batch_id` and `status`, paged by `cursor`."""
    batch_id = request.args.get("batch_id")
    if batch_id is not None:
        valid_id(batch_id, "batch_id")
    statuses = _statuses(JobStatus)
    limit = _int_arg("limit", 100, 1, MAX_PAGE)
    after: tuple[str, int] | None = None
    raw_cursor = request.args.get("cursor")
    if raw_cursor:
        b, _, r = raw_cursor.rpartition(".")
        if not _ID.fullmatch(b) or not r.isascii() or not r.isdigit() or len(r) > 12:
            raise BadRequest("cursor is not one this API returned", field="cursor")
        after = (b, int(r))
    jobs = offload(
        web_context().store.jobs,
        batch_id=batch_id,
        statuses=statuses,
        after_row=after,
        limit=limit + 1,
    )
    next_cursor = None
    if len(jobs) > limit:
        jobs = jobs[:limit]
        last = jobs[-1]
        next_cursor = f"{last['batch_id']}.{last['row']}"
    return jsonify({"jobs": jobs, "next_cursor": next_cursor})


@bp.get("/progress/<job_id>")
def progress_job(job_id: str) -> Response:
    """One job's snapshot: 404 for an unknown id, 200 with status `queued` while it waits."""
    valid_id(job_id, "job_id")
    return jsonify(offload(web_context().store.job, job_id))


# ---------------------------------------------------------------------- batches
@bp.get("/batches")
def batches() -> Response:
    """Batch snapshots, newest first, optionally of one status."""
    statuses = _statuses(BatchStatus)
    if statuses is not None and len(statuses) > 1:
        raise BadRequest("give one batch status", field="status")
    limit = _int_arg("limit", 50, 1, MAX_PAGE)
    found = offload(
        web_context().store.batches, status=statuses[0] if statuses else None, limit=limit
    )
    return jsonify({"batches": found})


def _batch_request() -> dict[str, Any]:
    if not request.is_json:
        raise BadRequest(
            "send a JSON object (Content-Type: application/json)",
            status=415,
            code="unsupported_media_type",
            field="Content-Type",
        )
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply", field="body") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", field="body")
    for key, value in body.items():
        kind = BATCH_FIELDS.get(key)
        if kind is None:
            raise Invalid(
                f"unknown field {str(key)[:40]!r} (known: {', '.join(BATCH_FIELDS)})", field=key
            )
        if not isinstance(value, kind):
            raise Invalid(f"{key} must be a {kind.__name__}", field=key)
    sheet = body.get("sheet")
    if not isinstance(sheet, str) or not sheet.strip():
        raise Invalid("sheet is required: a .csv/.xlsx path or a Google Sheets URL", field="sheet")
    if len(sheet) > MAX_SHEET_SPEC or "\x00" in sheet:
        raise Invalid(f"sheet must be at most {MAX_SHEET_SPEC} characters", field="sheet")
    pipeline = body.get("pipeline")
    if pipeline is not None:
        allowed = {*builtin_names(), web_context().settings.pipeline}
        if pipeline not in allowed:
            # The API never imports code by name: `module:attribute` pipelines are the
            # operator's choice, made in the configuration.
            raise Invalid(f"pipeline must be one of {', '.join(sorted(allowed))}", field="pipeline")
    _check_columns(body)
    _check_notify(body.get("notify", []))
    # Local files only from the allowed directories (a 403 that tells nothing of the file).
    admitted = web_context().sheets.admit(sheet.strip())
    return {"sheet": admitted, **{k: body[k] for k in body if k != "sheet"}}


def _check_notify(urls: list[Any]) -> None:
    """`notify`: webhook URLs, untrusted: the SSRF rules apply (also at every attempt)."""
    if len(urls) > MAX_NOTIFY_URLS or not all(isinstance(u, str) and len(u) <= 2000 for u in urls):
        raise Invalid(f"notify must list at most {MAX_NOTIFY_URLS} URLs", field="notify")
    for url in urls:
        refusal = webhook_refusal(url, web_context().settings.allow_hosts)
        if refusal is not None:
            raise Invalid(f"notify: {url[:80]!r}: {refusal}", field="notify")


def _column_name(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) > 0 and len(value) <= MAX_COLUMN_NAME


def _check_columns(body: Mapping[str, Any]) -> None:
    """`output_columns`: {OUTPUT: COLUMN} of column names; `overwrite`: a list of them."""
    mapping = body.get("output_columns", {})
    if not all(_column_name(k) and _column_name(v) for k, v in mapping.items()):
        raise Invalid(
            f"output_columns must map output names to column names (non-blank strings of at "
            f"most {MAX_COLUMN_NAME} characters)",
            field="output_columns",
        )
    if not all(_column_name(v) for v in body.get("overwrite", [])):
        raise Invalid(
            f"overwrite must list column names (non-blank strings of at most "
            f"{MAX_COLUMN_NAME} characters)",
            field="overwrite",
        )


@bp.post("/batches")
def start_batch() -> tuple[Response, int, dict[str, str]]:
    """Prepare a sheet's batch now (errors are this answer) and run it in the background.

    A sheet with no row to process answers 200 with `"nothing_to_do": true` and what
    became of its rows; no batch is recorded.
    """
    params = _batch_request()
    runner = web_context().runner
    # Every other field goes to `prepare_batch` as it is (its options).
    options = {k: v for k, v in params.items() if k not in ("sheet", "pipeline")}
    options["retry_failed"] = bool(options.get("retry_failed", False))
    options["force"] = bool(options.get("force", False))
    options["notify"] = list(options.get("notify") or [])
    try:
        batch_id = runner.submit(params["sheet"], pipeline=params.get("pipeline"), **options)
    except NothingToDo as done:
        body = {
            "batch_id": None,
            "nothing_to_do": True,
            "message": str(done),
            "selection": done.selection.as_json(),
        }
        return jsonify(body), 200, {}
    urls = _batch_urls(batch_id)
    created = {"batch_id": batch_id, "batch": _snapshot_of_batch(batch_id), "urls": urls}
    return jsonify(created), 202, {"Location": urls["self"]}


@bp.get("/batches/<batch_id>")
def batch(batch_id: str) -> Response:
    """One batch's snapshot: counts per status, processed, percent, elapsed and ETA."""
    valid_id(batch_id, "batch_id")
    return jsonify({**_snapshot_of_batch(batch_id), "urls": _batch_urls(batch_id)})


@bp.post("/batches/<batch_id>/cancel")
def cancel(batch_id: str) -> tuple[Response, int]:
    """Cancel the batch: queued rows at once, running rows at their next phase."""
    valid_id(batch_id, "batch_id")
    n = offload(web_context().store.cancel_batch, batch_id)
    body = {"batch_id": batch_id, "cancelled_queued": n, "batch": _snapshot_of_batch(batch_id)}
    return jsonify(body), 202


@bp.post("/batches/<batch_id>/retry")
def retry(batch_id: str) -> tuple[Response, int]:
    """Requeue the batch's failed rows and run them (in a worker process of this server)."""
    valid_id(batch_id, "batch_id")
    context = web_context()
    # The batch's sheet obeys the same rule as a new one (it may have come from the CLI).
    context.sheets.admit(context.runner.sheet_spec(_snapshot_of_batch(batch_id)))
    requeued = context.runner.retry(batch_id)
    body = {"batch_id": batch_id, "requeued": requeued, "batch": _snapshot_of_batch(batch_id)}
    return jsonify(body), 202


@bp.get("/sheets")
def sheets() -> Response:
    """The sheets a batch may be started on here: files in the allowed directories and the
    Google Sheets of recent batches."""
    context = web_context()
    files = offload(context.sheets.listing)
    recent = offload(context.store.batches, limit=200)
    google: list[dict[str, str]] = []
    seen: set[str] = set()
    for batch in recent:
        spec = context.runner.sheet_spec(batch)
        if is_google(spec) and spec not in seen:
            seen.add(spec)
            google.append({"spec": spec, "name": str(batch["sheet"])})
    return jsonify(
        {
            "directories": [str(d) for d in context.sheets.directories],
            "files": [{"path": f.path, "name": f.name, "directory": f.directory} for f in files],
            "google": google[:50],
            "pipelines": sorted({*builtin_names(), context.settings.pipeline}),
        }
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document of this API."""
    return jsonify(openapi_document())
