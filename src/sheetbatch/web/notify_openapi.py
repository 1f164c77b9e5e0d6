"""The notification parts of the OpenAPI document: `notify` in a batch request and
`GET /api/batches/{batch_id}/notifications` (added by `with_notifications`)."""

from __future__ import annotations

from typing import Any

from sheetbatch.config import NOTIFY_EVENTS


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "nullable": True, **extra}


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ATTEMPT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "time": _nullable("string", format="date-time"),
        "status": _nullable("integer", description="The HTTP status (null: no answer)."),
        "error": _nullable("string"),
        "duration": {"type": "number", "minimum": 0, "description": "Seconds."},
    },
    "required": ["time", "status", "error", "duration"],
}

NOTIFICATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The webhook-id of every attempt."},
        "type": {"type": "string", "enum": list(NOTIFY_EVENTS)},
        "url": {"type": "string"},
        "state": {"type": "string", "enum": ["pending", "delivered", "failed", "disabled"]},
        "batch_id": _nullable("string"),
        "schedule_id": _nullable("string"),
        "tick_id": _nullable("string"),
        "created": _nullable("string", format="date-time"),
        "next_attempt": _nullable("string", format="date-time"),
        "delivered": _nullable("string", format="date-time"),
        "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
    },
    "required": ["id", "type", "url", "state", "attempts"],
}

NOTIFY_FIELD: dict[str, Any] = {
    "type": "array",
    "maxItems": 10,
    "description": "Webhook URLs told the batch's outcome (Standard Webhooks; Slack's format "
    "for hooks.slack.com), as `--notify`. Private and loopback addresses are refused unless "
    "the server allows them.",
    "items": {"type": "string", "format": "uri", "maxLength": 2000},
}


def _path(batch_id: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {
            "batch_id": {"type": "string"},
            "notifications": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Notification"},
            },
        },
        "required": ["batch_id", "notifications"],
    }
    return {
        "get": {
            "summary": "The batch's notifications, with their delivery state and attempts.",
            "tags": ["batches"],
            "parameters": [batch_id],
            "responses": {
                "200": {
                    "description": "Oldest first.",
                    "content": {"application/json": {"schema": body}},
                },
                "400": _error("A malformed batch id."),
                "404": _error("Unknown batch id."),
                **common,
            },
        }
    }


def with_notifications(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the notification path, schemas and the batch request's `notify`."""
    batches = document["paths"]["/api/batches/{batch_id}"]["get"]
    batch_id = batches["parameters"][0]
    common = {k: v for k, v in batches["responses"].items() if k in ("401", "403")}
    document["paths"]["/api/batches/{batch_id}/notifications"] = _path(batch_id, common)
    schemas = document["components"]["schemas"]
    schemas["Attempt"] = ATTEMPT
    schemas["Notification"] = NOTIFICATION
    schemas["BatchRequest"]["properties"]["notify"] = NOTIFY_FIELD
    return document
