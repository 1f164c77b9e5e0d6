"""The schedules' part of the OpenAPI document (merged by `openapi.with_schedules`)."""

from __future__ import annotations

from typing import Any

from progress.schedule_model import Catchup, Overlap, TickReason, TickState
from progress.schema import ID_PATTERN
from sheetbatch.web.openapi_parts import error as _error
from sheetbatch.web.openapi_parts import json_body as _json
from sheetbatch.web.openapi_parts import nullable as _nullable
from sheetbatch.web.openapi_parts import obj as _obj
from sheetbatch.web.openapi_parts import ref as _ref

# From the code, never copied.
_ID = ID_PATTERN
_TICK_STATES = [s.value for s in TickState]
_REASONS = [r.value for r in TickReason]


_TIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Tick": _obj(
        {
            "tick_id": {"type": "string"},
            "schedule_id": {"type": "string"},
            "scheduled_for": _TIME,
            "state": {"type": "string", "enum": _TICK_STATES},
            "reason": {"type": "string", "enum": _REASONS, "nullable": True},
            "detail": _nullable("string"),
            "manual": {"type": "boolean"},
            "catchup": {"type": "boolean"},
            "started": _nullable("string", format="date-time"),
            "finished": _nullable("string", format="date-time"),
            "lag_seconds": _nullable("number"),
            "batch_id": _nullable("string"),
            "rows": _nullable("integer"),
            "scheduler": {"type": "string"},
            "epoch": _nullable("integer"),
        }
    ),
    "Schedule": _obj(
        {
            "schedule_id": {"type": "string"},
            "name": {"type": "string"},
            "sheet": {"type": "string"},
            "pipeline": {"type": "string"},
            "options": {"type": "object"},
            "trigger": {"type": "object"},
            "overlap": {"type": "string", "enum": [o.value for o in Overlap]},
            "catchup": {"type": "string", "enum": [c.value for c in Catchup]},
            "paused": {"type": "boolean"},
            "paused_reason": _nullable("string"),
            "notify": {"type": "array", "items": {"type": "string"}},
            "source": {"type": "string"},
            "failures": {"type": "integer", "minimum": 0},
            "created": _TIME,
            "updated": _TIME,
            "last_event_id": {"type": "integer", "minimum": 0},
            "description": {"type": "string"},
            "next_fire_times": {"type": "array", "items": {"type": "string"}},
            "last_tick": {"allOf": [_ref("Tick")], "nullable": True},
            "urls": {"type": "object", "additionalProperties": {"type": "string"}},
            "ticks": {"type": "array", "items": _ref("Tick")},
        },
        required=["schedule_id", "name", "sheet", "trigger", "paused", "description"],
    ),
    "ScheduleRequest": {
        "type": "object",
        "properties": {
            "sheet": {"type": "string", "minLength": 1, "maxLength": 4096},
            "every": {"type": "string", "description": "An interval in UTC: 30s, 5m, 2h, 1d."},
            "cron": {"type": "string", "description": "A 5-field cron expression."},
            "timezone": {"type": "string", "description": "IANA zone of `cron` (UTC)."},
            "name": {"type": "string", "maxLength": 200},
            "pipeline": {"type": "string"},
            "retry_failed": {"type": "boolean"},
            "overlap": {"type": "string", "enum": [o.value for o in Overlap]},
            "catchup": {"type": "string", "enum": [c.value for c in Catchup]},
            "paused": {"type": "boolean"},
            "notify": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
    },
}

_COMMON = {
    "401": _error("Authentication required (a token is configured)."),
    "403": _error(
        "Cross-site request, missing CSRF token, Host not served, or a local sheet outside "
        "the directories the server allows."
    ),
}


def _sid() -> dict[str, Any]:
    return {
        "name": "schedule_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": _ID},
    }


def _one(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "400": _error("A malformed schedule id."),
        "404": _error("Unknown schedule."),
        **extra,
        **_COMMON,
    }


def _body(required: list[str]) -> dict[str, Any]:
    schema = (
        {**SCHEMAS["ScheduleRequest"], "required": required}
        if required
        else _ref("ScheduleRequest")
    )
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def paths(sse_operation: Any) -> dict[str, Any]:
    """The schedule operations (`sse_operation` builds the stream's entry)."""
    tags = ["schedules"]
    invalid = {
        "415": _error("The body is not JSON."),
        "422": _error("The schedule cannot be made as given; `field` names what."),
    }
    return {
        "/api/schedules": {
            "get": {
                "summary": "Every schedule, the log cursor they are valid at, the leader.",
                "tags": tags,
                "responses": {
                    "200": _json(
                        _obj(
                            {
                                "schedules": {"type": "array", "items": _ref("Schedule")},
                                "cursor": {"type": "integer", "minimum": 0},
                                "scheduler": {"type": "object"},
                            }
                        ),
                        "The schedules.",
                    ),
                    **_COMMON,
                },
            },
            "post": {
                "summary": "Create a schedule (cron in a time zone, or an interval).",
                "tags": tags,
                "requestBody": _body(["sheet"]),
                "responses": {
                    "201": _json(_ref("Schedule"), "Created."),
                    "400": _error("The body is not a JSON object."),
                    **invalid,
                    **_COMMON,
                },
            },
        },
        "/api/schedules/{schedule_id}": {
            "get": {
                "summary": "One schedule with its newest ticks.",
                "tags": tags,
                "parameters": [_sid()],
                "responses": _one({"200": _json(_ref("Schedule"), "The schedule.")}),
            },
            "patch": {
                "summary": "Change a schedule; `paused` pauses or resumes it.",
                "tags": tags,
                "parameters": [_sid()],
                "requestBody": _body([]),
                "responses": _one({"200": _json(_ref("Schedule"), "Changed."), **invalid}),
            },
            "delete": {
                "summary": "Delete a schedule and its ticks (its batches stay).",
                "tags": tags,
                "parameters": [_sid()],
                "responses": _one({"204": {"description": "Deleted."}}),
            },
        },
        "/api/schedules/{schedule_id}/trigger": {
            "post": {
                "summary": "Run now as a tick (queued for the running scheduler).",
                "tags": tags,
                "parameters": [_sid()],
                "responses": _one(
                    {
                        "202": _json(
                            _obj({"tick": _ref("Tick"), "scheduler_running": {"type": "boolean"}}),
                            "Queued.",
                        )
                    }
                ),
            }
        },
        "/api/schedules/{schedule_id}/ticks": {
            "get": {
                "summary": "The schedule's ticks, newest first.",
                "tags": tags,
                "parameters": [
                    _sid(),
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                ],
                "responses": _one(
                    {
                        "200": _json(
                            _obj({"ticks": {"type": "array", "items": _ref("Tick")}}), "Ticks."
                        )
                    }
                ),
            }
        },
        "/api/schedules/{schedule_id}/preview": {
            "get": {
                "summary": "The rows a tick would select now (nothing is run).",
                "tags": tags,
                "parameters": [_sid()],
                "responses": _one(
                    {
                        "200": _json({"type": "object"}, "The rows."),
                        "422": _error("The sheet cannot be read; the reason."),
                    }
                ),
            }
        },
        "/events/schedules/{schedule_id}": {
            "get": sse_operation("One schedule's changes and ticks.", [_sid()])
        },
    }


def with_schedules(document: dict[str, Any], sse_operation: Any) -> dict[str, Any]:
    """`document` with the schedule paths and schemas added."""
    document["paths"] = {**document["paths"], **paths(sse_operation)}
    document["components"]["schemas"] = {**document["components"]["schemas"], **SCHEMAS}
    return document
