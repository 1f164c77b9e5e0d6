"""The progress store: an append-only event log with job and batch projections.

Every job transition is appended to the log and projected into the job and batch
tables in the same transaction, so any reader (REST, SSE, the sheet writer, the
terminal bar) sees a consistent state at a cursor.
"""

from progress.errors import (
    IllegalTransition,
    ProgressError,
    SchemaVersionError,
    UnknownBatch,
    UnknownJob,
)
from progress.snapshots import BatchSnapshot, JobCounts, JobSnapshot, LogEvent, PhaseRef
from progress.status import BatchStatus, EventType, JobStatus
from progress.store import Store, open_store

__all__ = [
    "BatchSnapshot",
    "BatchStatus",
    "EventType",
    "IllegalTransition",
    "JobCounts",
    "JobSnapshot",
    "JobStatus",
    "LogEvent",
    "PhaseRef",
    "ProgressError",
    "SchemaVersionError",
    "Store",
    "UnknownBatch",
    "UnknownJob",
    "open_store",
]
