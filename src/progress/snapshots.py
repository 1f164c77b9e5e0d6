"""The snapshots every reader shows, typed: what a job or batch looks like at one moment.

`JobSnapshot`, `BatchSnapshot` and `LogEvent` are TypedDicts: they are the JSON the API,
the SSE streams and the dashboard send unchanged (statuses are `str` enums), and mypy checks
every reader's keys. The functions here turn projection rows into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict, overload

from progress.status import BatchStatus, EventType, JobStatus


class PhaseRef(TypedDict):
    """Which phase a job is in: 1-based `index` of `count`, and its name."""

    index: int
    count: int
    name: str


class JobSnapshot(TypedDict):
    """A job's current state, as the store's projection holds it."""

    job_id: str
    batch_id: str
    row: int
    label: str
    inputs: dict[str, Any]
    status: JobStatus
    phase: PhaseRef | None
    fraction: float
    progress: float
    message: str
    error: str | None
    error_phase: str | None
    results: dict[str, Any]
    phase_seconds: dict[str, Any]
    attempts: int
    created: str
    started: str | None
    finished: str | None
    updated: str
    last_event_id: int


class JobCounts(TypedDict):
    """How many of a batch's jobs are in each status."""

    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class BatchSnapshot(TypedDict):
    """A batch's state: counts per status, processed, percent, elapsed and ETA in seconds."""

    batch_id: str
    sheet: str
    pipeline: str
    phases: list[str]
    status: BatchStatus
    total: int
    counts: JobCounts
    processed: int
    percent: float
    elapsed_seconds: float | None
    eta_seconds: float | None
    cancel_requested: bool
    options: dict[str, Any]
    created: str
    started: str | None
    finished: str | None
    updated: str
    last_event_id: int


class LogEvent(TypedDict):
    """An event as readers see it: id (the cursor), type, batch_id, job_id, time, data."""

    id: int
    type: str
    batch_id: str
    job_id: str | None
    time: str
    data: dict[str, Any]


@overload
def iso(ts: float) -> str: ...
@overload
def iso(ts: float | None) -> str | None: ...
def iso(ts: float | None) -> str | None:
    """A store timestamp (epoch seconds) as ISO 8601 UTC, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The status a job event's type implies: the log does not store it again in the event's
# data (about 20 bytes of every event); readers get it back in `event_dict`.
IMPLIED_STATUS: dict[str, str] = {
    EventType.JOB_QUEUED.value: JobStatus.QUEUED.value,
    EventType.JOB_REQUEUED.value: JobStatus.QUEUED.value,
    EventType.JOB_STARTED.value: JobStatus.RUNNING.value,
    EventType.PHASE_STARTED.value: JobStatus.RUNNING.value,
    EventType.PHASE_PROGRESS.value: JobStatus.RUNNING.value,
    EventType.PHASE_FINISHED.value: JobStatus.RUNNING.value,
    EventType.JOB_SUCCEEDED.value: JobStatus.SUCCEEDED.value,
    EventType.JOB_FAILED.value: JobStatus.FAILED.value,
    EventType.JOB_CANCELLED.value: JobStatus.CANCELLED.value,
}


def outputs_elsewhere(row: Any) -> bool:
    """Whether this event row's outputs are its job's (a `job_succeeded` stored without
    them, as from schema 8 on; older ones carry their own)."""
    return bool(row.type == EventType.JOB_SUCCEEDED.value and "outputs" not in row.data)


def stored_data(type_: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """An event's data as the log stores it: without a status its type implies."""
    implied = IMPLIED_STATUS.get(type_)
    if implied is not None and data.get("status") == implied:
        return {k: v for k, v in data.items() if k != "status"}
    return dict(data)


def event_dict(row: Any, outputs: Mapping[str, Any] | None = None) -> LogEvent:
    """An event row as a `LogEvent` (its data with the implied status back in front, and
    a `job_succeeded` event's `outputs`, stored in its job's results, given back)."""
    data = row.data
    implied = IMPLIED_STATUS.get(row.type)
    if implied is not None and "status" not in data:
        data = {"status": implied, **data}
    if outputs is not None and outputs_elsewhere(row):
        data = {**data, "outputs": dict(outputs)}
    return {
        "id": int(row.id),
        "type": row.type,
        "batch_id": row.batch_id,
        "job_id": row.job_id,
        "time": iso(float(row.time)),
        "data": data,
    }


def job_snapshot(row: Any) -> JobSnapshot:
    """A job row as a `JobSnapshot`: status, phase {index, count, name}, fraction, error."""
    status = JobStatus(row.status)
    phase: PhaseRef | None = None
    if row.phase_index:
        phase = {"index": row.phase_index, "count": row.phase_count, "name": row.phase_name}
    # Overall progress of the job: a failed job is NOT reported as done.
    if status is JobStatus.SUCCEEDED:
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
        "status": status,
        "phase": phase,
        "fraction": row.fraction,
        "progress": round(progress, 4),
        "message": row.message,
        "error": row.error,
        "error_phase": row.error_phase,
        "results": row.results,
        "phase_seconds": row.phase_seconds,
        "attempts": row.attempts,
        "created": iso(float(row.created)),
        "started": iso(row.started),
        "finished": iso(row.finished),
        "updated": iso(float(row.updated)),
        "last_event_id": int(row.last_event_id),
    }


def batch_snapshot(row: Any, now: float) -> BatchSnapshot:
    """A batch row as a `BatchSnapshot` at time `now` (for elapsed and ETA)."""
    counts: JobCounts = {
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
        "status": BatchStatus(row.status),
        "total": total,
        "counts": counts,
        "processed": processed,
        "percent": percent,
        "elapsed_seconds": elapsed,
        "eta_seconds": eta,
        "cancel_requested": bool(row.cancel_requested),
        "options": row.options,
        "created": iso(float(row.created)),
        "started": iso(row.started),
        "finished": iso(row.finished),
        "updated": iso(float(row.updated)),
        "last_event_id": int(row.last_event_id),
    }
