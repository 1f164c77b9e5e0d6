"""The OpenAPI 3.0 document of the REST API and the event streams (served at /api/openapi.json).

Kept beside the views it describes; tests run schemathesis against it, so every documented
status code and response shape is checked against what the server really answers.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from progress.status import BatchStatus, JobStatus
from sheetbatch import __version__
from sheetbatch.web.openapi_parts import error as _error
from sheetbatch.web.openapi_parts import id_param as _id_param
from sheetbatch.web.openapi_parts import json_body as _json
from sheetbatch.web.openapi_parts import nullable as _nullable
from sheetbatch.web.openapi_parts import obj as _obj
from sheetbatch.web.openapi_parts import ref as _ref
from sheetbatch.web.openapi_schemas import SCHEMAS as _SCHEMAS

# From the code, never copied: a new status changes the document too.
_BATCH_STATUSES = [s.value for s in BatchStatus]
_STATUS_LIST = "^({0})(,({0}))*$".format("|".join(s.value for s in JobStatus))


def _job_id_param() -> dict[str, Any]:
    # /api/progress/all and /api/progress/current are routes of their own, not job ids.
    param = _id_param("job_id")
    param["schema"] = {**param["schema"], "not": {"enum": ["all", "current"]}}
    return param


_SSE_DESCRIPTION = (
    "A text/event-stream. Every log event: `id:` (its log cursor), `event:` (its type), "
    "`data:` (the event as JSON: id, type, batch_id, job_id, time, data). Without a cursor "
    "the stream opens with a `snapshot` event (the state and the cursor it is valid at). "
    "Resume with the `Last-Event-ID` header or `?last_event_id=`: every later event is "
    "replayed in order, then live. A `: ping` comment plus an id-less `ping` event come "
    "every ping interval. Job and batch streams end with an `end` event. A cursor older than "
    "a compaction of the stream's batch (its progress reports removed, `sheetbatch compact`) "
    "or beyond the log's head gets a fresh `snapshot` instead of a replay."
)


def _sse_operation(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    cursor_params = [
        {
            "name": "last_event_id",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "pattern": r"^[0-9]{0,19}$"},
        },
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": r"^[0-9]{0,19}$"},
        },
    ]
    return {
        "summary": summary,
        "tags": ["events"],
        "parameters": [*params, *cursor_params],
        "responses": {
            "200": {
                "description": _SSE_DESCRIPTION,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "400": _error("A malformed id or cursor."),
            "401": _error("Authentication required (a token is configured)."),
            "404": _error("Unknown job or batch."),
            "503": _error("The server is shutting down."),
        },
    }


def _paths() -> dict[str, Any]:
    common = {
        "401": _error("Authentication required (a token is configured)."),
        "403": _error(
            "Cross-site request, missing CSRF token, Host not served, or a local sheet "
            "outside the directories the server allows."
        ),
    }
    batch_id = _id_param("batch_id")
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
    }
    return {
        "/api/progress/current": {
            "get": {
                "summary": "The running batches and their running jobs (empty when idle).",
                "tags": ["progress"],
                "responses": {
                    "200": _json(
                        _obj(
                            {
                                "batches": {
                                    "type": "array",
                                    "items": {
                                        "allOf": [
                                            _ref("Batch"),
                                            _obj(
                                                {
                                                    "running_jobs": {
                                                        "type": "array",
                                                        "items": _ref("Job"),
                                                    }
                                                }
                                            ),
                                        ]
                                    },
                                },
                                "cursor": {"type": "integer", "minimum": 0},
                            }
                        ),
                        "The active batches.",
                    ),
                    **common,
                },
            }
        },
        "/api/progress/all": {
            "get": {
                "summary": "Jobs by (batch, row), filtered, paginated with a cursor.",
                "description": "Every page is a range read from its cursor, so the last page "
                "of a 500,000-row batch costs what the first does; page through `next_cursor` "
                "(null on the last page) rather than raising `limit`.",
                "tags": ["progress"],
                "parameters": [
                    _id_param("batch_id", "query"),
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "description": "One status or several, comma-separated.",
                        "schema": {"type": "string", "pattern": _STATUS_LIST},
                    },
                    limit,
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "The `next_cursor` of the previous page.",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json(
                        _obj(
                            {
                                "jobs": {"type": "array", "items": _ref("Job")},
                                "next_cursor": _nullable("string"),
                            }
                        ),
                        "One page of jobs; `next_cursor` is null on the last page.",
                    ),
                    "400": _error("A malformed filter, limit or cursor."),
                    **common,
                },
            }
        },
        "/api/progress/{job_id}": {
            "get": {
                "summary": "One job's snapshot.",
                "tags": ["progress"],
                "parameters": [_job_id_param()],
                "responses": {
                    "200": _json(_ref("Job"), "The job (a queued job is 200, status queued)."),
                    "400": _error("A malformed job id."),
                    "404": _error("Unknown job id."),
                    **common,
                },
            }
        },
        "/api/batches": {
            "get": {
                "summary": "Batches, newest first.",
                "tags": ["batches"],
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": _BATCH_STATUSES},
                    },
                    limit,
                ],
                "responses": {
                    "200": _json(
                        _obj({"batches": {"type": "array", "items": _ref("Batch")}}),
                        "The batches.",
                    ),
                    "400": _error("A malformed filter or limit."),
                    **common,
                },
            },
            "post": {
                "summary": "Start a batch: prepared now, run in the background.",
                "tags": ["batches"],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("BatchRequest")}},
                },
                "responses": {
                    "200": _json(
                        _obj(
                            {
                                "batch_id": {"type": "null"},
                                "nothing_to_do": {"type": "boolean", "enum": [True]},
                                "message": {"type": "string"},
                                "selection": {"type": "object"},
                            }
                        ),
                        "Nothing to do: no row of the sheet is to be processed (all done, "
                        "empty, or skipped; `selection` counts them by reason). No batch "
                        "is recorded.",
                    ),
                    "202": _json(
                        _obj(
                            {
                                "batch_id": {"type": "string"},
                                "batch": _ref("Batch"),
                                "urls": _ref("BatchUrls"),
                            }
                        ),
                        "Accepted: the batch is running.",
                    ),
                    "400": _error("The body is not a JSON object, or is nested too deeply."),
                    "409": _error("Another process is running this sheet's batch."),
                    "413": _error("The body is larger than 1 MB."),
                    "415": _error("The body is not JSON."),
                    "422": _error(
                        "The sheet, pipeline or columns cannot be used; `field` names it "
                        "(`output_columns` when a column holds the operator's values: map "
                        "the output elsewhere or list the column in `overwrite`)."
                    ),
                    "503": _error("The server is shutting down."),
                    **common,
                },
            },
        },
        "/api/sheets": {
            "get": {
                "summary": "The sheets a batch may start on: allowed files, recent Google Sheets.",
                "tags": ["batches"],
                "responses": {
                    "200": _json(
                        _obj(
                            {
                                "directories": {"type": "array", "items": {"type": "string"}},
                                "files": {
                                    "type": "array",
                                    "items": _obj(
                                        {
                                            "path": {"type": "string"},
                                            "name": {"type": "string"},
                                            "directory": {"type": "string"},
                                        }
                                    ),
                                },
                                "google": {
                                    "type": "array",
                                    "items": _obj(
                                        {"spec": {"type": "string"}, "name": {"type": "string"}}
                                    ),
                                },
                                "pipelines": {"type": "array", "items": {"type": "string"}},
                            }
                        ),
                        "What the start form offers.",
                    ),
                    **common,
                },
            },
        },
        "/api/batches/{batch_id}": {
            "get": {
                "summary": "One batch: counts per status, percent, elapsed, ETA.",
                "tags": ["batches"],
                "parameters": [batch_id],
                "responses": {
                    "200": _json(
                        {"allOf": [_ref("Batch"), _obj({"urls": _ref("BatchUrls")})]},
                        "The batch.",
                    ),
                    "400": _error("A malformed batch id."),
                    "404": _error("Unknown batch id."),
                    **common,
                },
            }
        },
        "/api/batches/{batch_id}/cancel": {
            "post": {
                "summary": "Cancel: queued rows at once, running rows at their next phase.",
                "tags": ["batches"],
                "parameters": [batch_id],
                "responses": {
                    "202": _json(
                        _obj(
                            {
                                "batch_id": {"type": "string"},
                                "cancelled_queued": {"type": "integer", "minimum": 0},
                                "batch": _ref("Batch"),
                            }
                        ),
                        "Cancel requested.",
                    ),
                    "400": _error("A malformed batch id."),
                    "404": _error("Unknown batch id."),
                    **common,
                },
            }
        },
        "/api/batches/{batch_id}/retry": {
            "post": {
                "summary": "Requeue the failed rows and run them.",
                "tags": ["batches"],
                "parameters": [batch_id],
                "responses": {
                    "202": _json(
                        _obj(
                            {
                                "batch_id": {"type": "string"},
                                "requeued": {"type": "array", "items": {"type": "string"}},
                                "batch": _ref("Batch"),
                            }
                        ),
                        "The requeued job ids (empty when none had failed).",
                    ),
                    "400": _error("A malformed batch id."),
                    "404": _error("Unknown batch id."),
                    "409": _error("Another process is running this batch."),
                    "422": _error(
                        "The batch's sheet cannot be opened again (nothing was changed)."
                    ),
                    "503": _error("The server is shutting down."),
                    **common,
                },
            }
        },
        "/events/progress/{job_id}": {
            "get": _sse_operation("One job's events.", [_job_id_param()])
        },
        "/events/batches/{batch_id}": {"get": _sse_operation("One batch's events.", [batch_id])},
        "/events/progress": {"get": _sse_operation("Every event of the log.", [])},
        "/healthz": {
            "get": {
                "summary": "Liveness and store reachability.",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": _json(
                        _obj(
                            {
                                "status": {"type": "string", "enum": ["ok"]},
                                "cursor": {"type": "integer", "minimum": 0},
                            }
                        ),
                        "Up; the store answers.",
                    ),
                    "503": _json(
                        _obj({"status": {"type": "string"}, "error": {"type": "string"}}),
                        "The store does not answer, or the server is shutting down.",
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus text exposition format 0.0.4.",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "The metrics.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **common,
                },
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document (built once)."""
    from sheetbatch.web.notify_openapi import with_notifications
    from sheetbatch.web.schedules_openapi import with_schedules

    return with_notifications(with_schedules(_document(), _sse_operation))


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "sheetbatch",
            "version": __version__,
            "description": (
                "Live progress of spreadsheet batches. With SHEETBATCH_API_TOKEN set, send "
                "`Authorization: Bearer <token>` (or use the dashboard's session cookie, "
                "whose mutating requests need the `X-CSRF-Token` header)."
            ),
        },
        "paths": _paths(),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }
