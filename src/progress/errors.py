"""The exception tree of the progress store."""


class ProgressError(Exception):
    """Root of every error the progress store raises."""


class IllegalTransition(ProgressError):
    """A job was asked to move to a state its state machine does not allow."""

    def __init__(self, job_id: str, current: str, wanted: str) -> None:
        super().__init__(f"job {job_id}: illegal transition {current} -> {wanted}")
        self.job_id = job_id
        self.current = current
        self.wanted = wanted


class UnknownJob(ProgressError):
    """No job with this id exists in the store."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"unknown job {job_id!r}")
        self.job_id = job_id


class UnknownBatch(ProgressError):
    """No batch with this id exists in the store."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"unknown batch {batch_id!r}")
        self.batch_id = batch_id


class SchemaVersionError(ProgressError):
    """The database was written by a schema this version cannot read or upgrade."""


class StoreUnavailable(ProgressError):
    """The database could not be reached or opened."""


class StoreNotFound(StoreUnavailable):
    """There is no progress store where one was looked for (and none was to be created)."""


class LeaseLost(ProgressError):
    """A worker wrote to a job it no longer holds (its lease expired and it was requeued)."""

    def __init__(self, job_id: str, owner: str, holder: str | None) -> None:
        super().__init__(f"job {job_id}: lease held by {holder!r}, not {owner!r}")
        self.job_id = job_id
