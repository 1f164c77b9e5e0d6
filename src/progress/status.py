"""Job and batch statuses, event types, and the job state machine."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is in its life; a `str` so it goes into JSON, SSE and sheets unchanged."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB_STATUSES


TERMINAL_JOB_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# The only legal moves; anything else is a bug and raises IllegalTransition.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED}),
}
# running -> queued exists only for lease expiry (a dead worker's job is requeued);
# a retry of a finished job is failed|cancelled -> queued.


class BatchStatus(StrEnum):
    """A batch is running until every job is terminal."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class EventType(StrEnum):
    """The kinds of event in the log."""

    BATCH_CREATED = "batch_created"
    BATCH_FINISHED = "batch_finished"
    BATCH_CANCEL_REQUESTED = "batch_cancel_requested"
    BATCH_REOPENED = "batch_reopened"
    JOBS_ADDED = "jobs_added"
    JOB_QUEUED = "job_queued"
    JOB_STARTED = "job_started"
    PHASE_STARTED = "phase_started"
    PHASE_PROGRESS = "phase_progress"
    PHASE_FINISHED = "phase_finished"
    JOB_SUCCEEDED = "job_succeeded"
    JOB_FAILED = "job_failed"
    JOB_CANCELLED = "job_cancelled"
    JOB_REQUEUED = "job_requeued"
    JOB_NOTE = "job_note"


class ScheduleEventType(StrEnum):
    """The kinds of event schedules and their ticks append to the log.

    Their `batch_id` is the schedule's id (the log's stream key), `job_id` is null and
    `data` carries `schedule_id` (and `tick_id` for ticks).
    """

    SCHEDULE_CREATED = "schedule_created"
    SCHEDULE_UPDATED = "schedule_updated"
    SCHEDULE_PAUSED = "schedule_paused"
    SCHEDULE_RESUMED = "schedule_resumed"
    SCHEDULE_DELETED = "schedule_deleted"
    TICK_STARTED = "tick_started"
    TICK_LAUNCHED = "tick_launched"
    TICK_FINISHED = "tick_finished"
