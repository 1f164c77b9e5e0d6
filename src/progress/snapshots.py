"""Turning projection rows into the snapshots every reader shows (JSON-ready dicts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso(ts: float | None) -> str | None:
    """A store timestamp (epoch seconds) as ISO 8601 UTC, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_dict(row: Any) -> dict[str, Any]:
    """An event as readers see it: id (the cursor), type, batch_id, job_id, time, data."""
    return {
        "id": int(row.id),
        "type": row.type,
        "batch_id": row.batch_id,
        "job_id": row.job_id,
        "time": iso(row.time),
        "data": row.data,
    }


def job_snapshot(row: Any) -> dict[str, Any]:
    """A job's current state: status, phase {index, count, name}, fraction, error, results."""
    phase = None
    if row.phase_index:
        phase = {"index": row.phase_index, "count": row.phase_count, "name": row.phase_name}
    # Overall progress of the job: a failed job is NOT reported as done.
    if row.status == "succeeded":
        progress = 1.0
    elif row.phase_count and row.phase_index:
        progress = ((row.phase_index - 1) + (row.fraction or 0.0)) / row.phase_count
    else:
        progress = 0.0
    return {
        "job_id": row.job_id,
        "batch_id": row.batch_id,
        "row": row.row,
        "label": row.label,
        "inputs": row.inputs,
        "status": row.status,
        "phase": phase,
        "fraction": row.fraction,
        "progress": round(progress, 4),
        "message": row.message,
        "error": row.error,
        "error_phase": row.error_phase,
        "results": row.results,
        "phase_seconds": row.phase_seconds,
        "attempts": row.attempts,
        "created": iso(row.created),
        "started": iso(row.started),
        "finished": iso(row.finished),
        "updated": iso(row.updated),
        "last_event_id": int(row.last_event_id),
    }


def batch_snapshot(row: Any, now: float) -> dict[str, Any]:
    """A batch's state: counts per status, processed, percent, elapsed and ETA in seconds."""
    counts = {
        "queued": row.n_queued,
        "running": row.n_running,
        "succeeded": row.n_succeeded,
        "failed": row.n_failed,
        "cancelled": row.n_cancelled,
    }
    processed = row.n_succeeded + row.n_failed + row.n_cancelled
    total = row.total
    percent = round(100.0 * processed / total, 2) if total else 100.0
    elapsed = None
    eta = None
    if row.started is not None:
        end = row.finished if row.finished is not None else now
        elapsed = round(max(0.0, end - row.started), 3)
        remaining = total - processed
        if row.finished is not None or remaining == 0:
            eta = 0.0
        elif processed and elapsed > 0:
            eta = round(remaining * elapsed / processed, 1)
    return {
        "batch_id": row.batch_id,
        "sheet": row.sheet,
        "pipeline": row.pipeline,
        "phases": row.phases,
        "status": row.status,
        "total": total,
        "counts": counts,
        "processed": processed,
        "percent": percent,
        "elapsed_seconds": elapsed,
        "eta_seconds": eta,
        "cancel_requested": bool(row.cancel_requested),
        "options": row.options,
        "created": iso(row.created),
        "started": iso(row.started),
        "finished": iso(row.finished),
        "updated": iso(row.updated),
        "last_event_id": int(row.last_event_id),
    }
