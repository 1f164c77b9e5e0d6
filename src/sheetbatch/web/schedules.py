"""Schedules over HTTP: `/api/schedules…`, `/events/schedules/<id>` and the Schedules page.

Thin views over `sheetbatch.schedules`, the functions the CLI calls; ticks are started by the
running scheduler (the leader), never by a request: `trigger` records a tick due now. A
schedule's local sheet obeys the rule of every sheet the web service touches (`sheets.py`):
only from the allowed directories, checked before anything looks at the file. Store work
and sheet reads run off the event loop (`offload`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from pipeline.registry import builtin_names
from progress.sse import Scope, Snapshot, StreamPlan
from sheetbatch.schedules import (
    ScheduleInput,
    add_schedule,
    change_schedule,
    leader_status,
    preview,
    schedule_view,
    schedule_views,
)
from sheetbatch.web.api import valid_id
from sheetbatch.web.context import web_context
from sheetbatch.web.errors import BadRequest, Invalid, Unavailable
from sheetbatch.web.events import request_cursor, stream_response
from sheetbatch.web.offload import offload

log = logging.getLogger(__name__)

bp = Blueprint("schedules", __name__)

FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "sheet": str,
    "every": str,
    "cron": str,
    "timezone": str,
    "name": str,
    "pipeline": str,
    "retry_failed": bool,
    "overlap": str,
    "catchup": str,
    "paused": bool,
    "notify": list,
}
MAX_TICKS = 500


def _body(*, creating: bool) -> dict[str, Any]:
    if not request.is_json:
        raise BadRequest(
            "send a JSON object (Content-Type: application/json)",
            status=415,
            code="unsupported_media_type",
            field="Content-Type",
        )
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", field="body")
    for key, value in body.items():
        kind = FIELDS.get(key)
        if kind is None:
            raise Invalid(
                f"unknown field {str(key)[:40]!r} (known: {', '.join(FIELDS)})", field=key
            )
        if value is None and key in ("every", "cron", "timezone") and not creating:
            continue
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise Invalid(f"{key} must be a {getattr(kind, '__name__', kind)}", field=key)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise Invalid(f"{key} must be a list of URLs", field=key)
        if isinstance(value, str) and (len(value) > 4096 or "\x00" in value):
            raise Invalid(f"{key} must be at most 4096 characters", field=key)
    if creating and not str(body.get("sheet", "")).strip():
        raise Invalid("sheet is required: a .csv/.xlsx path or a Google Sheets URL", field="sheet")
    pipeline = body.get("pipeline")
    if pipeline is not None:
        allowed = {*builtin_names(), web_context().settings.pipeline}
        if pipeline not in allowed:
            # As for batches: the API never imports code by name.
            raise Invalid(f"pipeline must be one of {', '.join(sorted(allowed))}", field="pipeline")
    sheet = body.get("sheet")
    if isinstance(sheet, str) and sheet.strip():
        # Local files only from the allowed directories (a 403 that tells nothing of the file).
        body["sheet"] = web_context().sheets.admit(sheet.strip())
    return body


def _find(schedule_id: str) -> Any:
    valid_id(schedule_id, "schedule_id")
    return offload(web_context().store.schedule, schedule_id)


def _urls(schedule_id: str) -> dict[str, str]:
    return {
        "self": url_for("schedules.one", schedule_id=schedule_id),
        "ticks": url_for("schedules.ticks", schedule_id=schedule_id),
        "trigger": url_for("schedules.trigger", schedule_id=schedule_id),
        "preview": url_for("schedules.preview_rows", schedule_id=schedule_id),
        "events": url_for("schedules.events", schedule_id=schedule_id),
    }


def _view(row: Any, ticks: int = 0) -> dict[str, Any]:
    store = web_context().store

    def read() -> dict[str, Any]:
        recent = store.ticks(row.schedule_id, limit=max(ticks, 1))
        view = schedule_view(store, row, last_tick=recent[0] if recent else None)
        if ticks:
            view["ticks"] = [t.to_json() for t in recent[:ticks]]
        return view

    view = offload(read)
    view["urls"] = _urls(row.schedule_id)
    return view


@bp.get("/api/schedules")
def all_schedules() -> Response:
    """Every schedule (trigger in words, next fire times, last tick), the log cursor they
    are valid at, and who leads the schedulers."""
    store = web_context().store

    def read() -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        return store.last_event_id(), schedule_views(store), leader_status(store)

    cursor, views, leader = offload(read)
    for view in views:
        view["urls"] = _urls(view["schedule_id"])
    return jsonify({"schedules": views, "cursor": cursor, "scheduler": leader})


@bp.post("/api/schedules")
def create() -> tuple[Response, int, dict[str, str]]:
    """Create a schedule; 422 naming the field when it cannot be made."""
    body = _body(creating=True)
    context = web_context()
    given = ScheduleInput(
        sheet=str(body["sheet"]),
        every=body.get("every"),
        cron=body.get("cron"),
        timezone=body.get("timezone"),
        name=body.get("name"),
        pipeline=body.get("pipeline"),
        retry_failed=bool(body.get("retry_failed", False)),
        overlap=str(body.get("overlap", "skip")),
        catchup=str(body.get("catchup", "latest")),
        paused=bool(body.get("paused", False)),
        notify=tuple(body.get("notify", ())),
    )
    row = offload(add_schedule, context.store, context.settings, given, source="api")
    return jsonify(_view(row)), 201, {"Location": _urls(row.schedule_id)["self"]}


@bp.get("/api/schedules/<schedule_id>")
def one(schedule_id: str) -> Response:
    """One schedule with its 20 newest ticks."""
    return jsonify(_view(_find(schedule_id), ticks=20))


@bp.patch("/api/schedules/<schedule_id>")
def change(schedule_id: str) -> Response:
    """Change fields of a schedule; `paused` pauses or resumes it."""
    row = _find(schedule_id)
    body = _body(creating=False)
    context = web_context()
    after = offload(change_schedule, context.store, context.settings, row.schedule_id, body)
    return jsonify(_view(after, ticks=20))


@bp.delete("/api/schedules/<schedule_id>")
def delete(schedule_id: str) -> tuple[str, int]:
    """Delete the schedule and its tick history (batches stay)."""
    row = _find(schedule_id)
    offload(web_context().store.delete_schedule, row.schedule_id)
    return "", 204


@bp.post("/api/schedules/<schedule_id>/trigger")
def trigger(schedule_id: str) -> tuple[Response, int]:
    """Run now, as a tick: queued for the leader (a run already waiting is returned)."""
    row = _find(schedule_id)
    context = web_context()
    # The run writes into the sheet: it obeys the rule of a new one (it may come from the CLI).
    context.sheets.admit(row.sheet)
    store = context.store
    by = f"api {request.remote_addr or ''}"
    tick = offload(store.request_run, row.schedule_id, requested_by=by)
    status = offload(leader_status, store)
    return jsonify({"tick": tick.to_json(), "scheduler_running": status["leading"]}), 202


@bp.get("/api/schedules/<schedule_id>/ticks")
def ticks(schedule_id: str) -> Response:
    """The schedule's ticks, newest first."""
    row = _find(schedule_id)
    raw = request.args.get("limit", "50")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_TICKS:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_TICKS}", field="limit")
    found = offload(web_context().store.ticks, row.schedule_id, limit=int(raw))
    return jsonify({"ticks": [t.to_json() for t in found]})


@bp.get("/api/schedules/<schedule_id>/preview")
def preview_rows(schedule_id: str) -> Response:
    """The rows a tick would select now (the sheet is read; nothing is written)."""
    row = _find(schedule_id)
    context = web_context()
    # The preview shows the sheet's rows: only one from the allowed directories.
    context.sheets.admit(row.sheet)
    return jsonify(offload(preview, context.store, context.settings, row))


@bp.get("/events/schedules/<schedule_id>")
def events(schedule_id: str) -> Response:
    """One schedule's events (its changes and its ticks); never ends by itself."""
    valid_id(schedule_id, "schedule_id")
    context = web_context()
    if context.hub.closed:
        raise Unavailable("the server is shutting down")
    cursor = request_cursor()
    store = context.store
    scope = Scope(batch_id=schedule_id)  # schedule events carry the schedule id as batch_id

    def plan() -> StreamPlan:
        if cursor is None or cursor > store.last_event_id():
            head, row, recent = store.schedule_with_ticks(schedule_id)
            state = {"schedule": schedule_view(store, row), "ticks": [t.to_json() for t in recent]}
            return StreamPlan(scope, snapshot=Snapshot(head, state, False))
        store.schedule(schedule_id)
        return StreamPlan(scope, cursor=cursor)

    return stream_response(context, offload(plan))


@bp.get("/schedules")
def page() -> str | BaseResponse:
    """The Schedules page: every schedule, its next fire times and recent ticks; a form."""
    context = web_context()
    guard = context.guard
    if guard.required and not guard.signed_in(request):
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    return render_template(
        "schedules.html",
        csrf_token=guard.csrf_token(request),
        signed_in=guard.required,
        watchdog_seconds=context.watchdog_seconds,
        default_pipeline=context.settings.pipeline,
        pipelines=sorted({*builtin_names(), context.settings.pipeline}),
    )
