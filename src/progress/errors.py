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


# How the store's messages name the setting that chose the database. They speak of no
# front end's flags: each front end says it its own way (the CLI: `--db`, see `cli_errors`).
STORE_SETTING = "the store URL"


class StoreUnavailable(ProgressError):
    """The database could not be reached or opened.

    `about_url` is True when the store URL itself is at fault (malformed, a directory, an
    unsupported database), so a front end can name the setting it came from.
    """

    def __init__(self, message: str, *, about_url: bool = False) -> None:
        super().__init__(message)
        self.about_url = about_url


class StoreNotFound(StoreUnavailable):
    """There is no progress store where one was looked for (and none was to be created)."""


# How the store's messages name the setting that bounds a process's connections: every
# front end reads it from the same place (a config file or SHEETBATCH_STORE_POOL_SIZE).
POOL_SETTING = "[store] pool_size"


class NoConnectionSlot(StoreUnavailable):
    """PostgreSQL refused a new connection for lack of slots (max_connections, or a role's or
    database's CONNECTION LIMIT, reached): the processes together ask for too many."""


class StoreBusy(StoreUnavailable):
    """Every connection this process may hold to the store stayed in use for the pool's
    timeout: the work waiting for one gives up instead of hanging."""


class LeaseLost(ProgressError):
    """A worker wrote to a job it no longer holds (its lease expired and it was requeued)."""

    def __init__(
        self,
        job_id: str,
        owner: str,
        holder: str | None,
        epoch: int | None = None,
        current: int | None = None,
    ) -> None:
        at = "" if epoch is None else f" at epoch {current}, not {epoch}"
        super().__init__(f"job {job_id}: lease held by {holder!r}{at}, not {owner!r}")
        self.job_id = job_id
        self.epoch = epoch
        self.current = current


class UnknownSchedule(ProgressError):
    """No schedule with this id (or name) exists in the store."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"unknown schedule {schedule_id!r}")
        self.schedule_id = schedule_id


class UnknownTick(ProgressError):
    """No tick with this id exists in the store."""

    def __init__(self, tick_id: str) -> None:
        super().__init__(f"unknown tick {tick_id!r}")
        self.tick_id = tick_id


class DuplicateSchedule(ProgressError):
    """A schedule with this name exists already (names are unique and stable)."""

    def __init__(self, name: str, schedule_id: str) -> None:
        super().__init__(
            f"a schedule named {name!r} exists already ({schedule_id}); choose another name"
        )
        self.name = name
        self.schedule_id = schedule_id


class NotLeader(ProgressError):
    """A write fenced by a lease was refused: the writer's epoch is not the lease's current one.

    The writer lost the lease (it expired, or another process took it over); it must stop
    acting as the holder.
    """

    def __init__(self, name: str, owner: str, epoch: int, holder: str | None, current: int) -> None:
        super().__init__(
            f"lease {name!r}: write by {owner} at epoch {epoch} refused; "
            f"held by {holder or 'nobody'} at epoch {current}"
        )
        self.name = name
        self.epoch = epoch
        self.current = current


class IllegalTickTransition(ProgressError):
    """A tick was asked to move from a state that does not allow it (it already ended)."""

    def __init__(self, tick_id: str, current: str, wanted: str) -> None:
        super().__init__(f"tick {tick_id}: illegal transition {current} -> {wanted}")
        self.tick_id = tick_id


class BatchExists(ProgressError):
    """A batch with this id exists already (a batch id given as an idempotency key)."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"batch {batch_id!r} exists already")
        self.batch_id = batch_id


class BatchStillRunning(ProgressError):
    """A batch was asked to be compacted while it runs (only finished batches are)."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"batch {batch_id} is still running; only finished batches are compacted")
        self.batch_id = batch_id
