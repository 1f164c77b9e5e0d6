"""The component schemas of the REST API's OpenAPI document: errors, jobs, batches and
their parts, as the store's snapshots (`progress.snapshots`) and the views answer them."""

from __future__ import annotations

from typing import Any

from progress.status import BatchStatus, JobStatus
from sheetbatch.web.openapi_parts import nullable as _nullable
from sheetbatch.web.openapi_parts import obj as _obj
from sheetbatch.web.openapi_parts import ref as _ref

# From the code, never copied: a new status changes the document too.
_JOB_STATUSES = [s.value for s in JobStatus]
_BATCH_STATUSES = [s.value for s in BatchStatus]

_COUNTS = _obj({s: {"type": "integer", "minimum": 0} for s in _JOB_STATUSES})

SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {
            "error": {"type": "string"},
            "code": {"type": "string"},
            "field": _nullable("string"),
        }
    ),
    "Phase": _obj(
        {
            "index": {"type": "integer", "minimum": 1},
            "count": {"type": "integer", "minimum": 1},
            "name": {"type": "string"},
        }
    ),
    "Job": _obj(
        {
            "job_id": {"type": "string"},
            "batch_id": {"type": "string"},
            "row": {"type": "integer"},
            "label": {"type": "string"},
            "inputs": {"type": "object", "additionalProperties": {"type": "string"}},
            "status": {"type": "string", "enum": _JOB_STATUSES},
            "phase": {"allOf": [_ref("Phase")], "nullable": True},
            "fraction": {"type": "number"},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "message": {"type": "string"},
            "error": _nullable("string"),
            "error_phase": _nullable("string"),
            "results": {"type": "object"},
            "phase_seconds": {"type": "object", "additionalProperties": {"type": "number"}},
            "attempts": {"type": "integer", "minimum": 0},
            "created": {"type": "string", "format": "date-time"},
            "started": _nullable("string", format="date-time"),
            "finished": _nullable("string", format="date-time"),
            "updated": {"type": "string", "format": "date-time"},
            "last_event_id": {"type": "integer", "minimum": 0},
        }
    ),
    "Batch": _obj(
        {
            "batch_id": {"type": "string"},
            "sheet": {"type": "string"},
            "pipeline": {"type": "string"},
            "phases": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "enum": _BATCH_STATUSES},
            "total": {"type": "integer", "minimum": 0},
            "counts": _COUNTS,
            "processed": {"type": "integer", "minimum": 0},
            "percent": {"type": "number", "minimum": 0, "maximum": 100},
            "elapsed_seconds": _nullable("number"),
            "eta_seconds": _nullable("number"),
            "cancel_requested": {"type": "boolean"},
            "options": {"type": "object"},
            "created": {"type": "string", "format": "date-time"},
            "started": _nullable("string", format="date-time"),
            "finished": _nullable("string", format="date-time"),
            "updated": {"type": "string", "format": "date-time"},
            "last_event_id": {"type": "integer", "minimum": 0},
        }
    ),
    "BatchUrls": _obj(
        {k: {"type": "string"} for k in ("self", "jobs", "events", "cancel", "retry", "dashboard")}
    ),
    "BatchRequest": {
        "type": "object",
        "properties": {
            "sheet": {
                "type": "string",
                "minLength": 1,
                "maxLength": 4096,
                "description": "A .csv/.xlsx path on the server, or a Google Sheets URL.",
            },
            "pipeline": {
                "type": "string",
                "description": "A built-in pipeline name, or the server's configured pipeline.",
            },
            "retry_failed": {"type": "boolean", "default": False},
            "force": {"type": "boolean", "default": False},
            "output_columns": {
                "type": "object",
                "description": "Write an output (or Status, Job ID, Updated, Error) into "
                'another column: {"Name": "Found name"}, as `--output-column`.',
                "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200},
            },
            "overwrite": {
                "type": "array",
                "description": "Columns the run may write into although they hold values "
                "sheetbatch did not write, as `--overwrite`.",
                "items": {"type": "string", "minLength": 1, "maxLength": 200},
            },
        },
        "required": ["sheet"],
        "additionalProperties": False,
    },
}
