"""Writing transactions with group commit: one transaction carries many threads' writes.

Every store write is a function of an open transaction (`Tx`). Threads hand their write to
the `GroupCommitter`; whichever thread waits for its write and finds no commit in progress
becomes the leader and runs every waiting write in ONE transaction; one write's error (an
illegal transition) undoes only that write. Under load, N writers pay for one
BEGIN, one read of the log head, one multi-row insert of events and one COMMIT.

A queued write (`submit`: a phase start or boundary, a distributed worker's success) never
makes its thread lead: the committer's own thread does, so a worker thread goes back to its
row at once instead of sitting through a commit that carries other threads' writes too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_incrementing,
)

from progress.errors import ProgressError, StoreUnavailable
from progress.statements import HotStatements
from progress.status import EventType, ScheduleEventType

log = logging.getLogger(__name__)

R = TypeVar("R")

# Asking whether a COMMIT without an answer landed: about 5 s in all.
_VERIFY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0)


class Tx:
    """The open transaction a write runs in: the connection, its hot-path statements (`sql`),
    the time, and the event appender.

    Event ids are handed out from the log head read (and locked) at the start of the
    transaction, so ids are assigned in commit order: a reader that saw id N never later
    finds an id below N.
    """

    def __init__(self, conn: Connection, now: float) -> None:
        self._conn = conn
        self.sql = HotStatements(conn)
        self.now = now
        self.head, self.xid = self.sql.lock_head()
        self.rows: list[dict[str, Any]] = []
        self._spilled = 0  # events already inserted (not yet committed)

    @property
    def conn(self) -> Connection:
        """The transaction's connection, for statements off the hot path: the job updates
        `sql` holds are sent first, so whatever runs on it sees them."""
        self.sql.flush_jobs()
        self.sql.flush_counts()
        return self._conn

    @property
    def appended(self) -> bool:
        """Whether this transaction appended any event."""
        return bool(self.rows) or self._spilled > 0

    def spill(self) -> None:
        """Insert the events collected so far now (they commit with the transaction)."""
        if self.rows:
            self.sql.insert_events(self.rows)
            self._spilled += len(self.rows)
            self.rows = []

    def emit(
        self,
        type_: EventType | ScheduleEventType,
        batch_id: str,
        job_id: str | None,
        data: Mapping[str, Any],
    ) -> int:
        """Append an event; its id."""
        self.head += 1
        self.rows.append(
            {
                "id": self.head,
                "type": type_.value,
                "batch_id": batch_id,
                "job_id": job_id,
                "time": self.now,
                "data": dict(data),
            }
        )
        return self.head

    def mark(self) -> tuple[int, int]:
        return self.head, self._spilled + len(self.rows)

    def undo_to(self, mark: tuple[int, int]) -> None:
        """Forget events after `mark` (the savepoint rollback removed any already inserted)."""
        self.head, size = mark
        if size >= self._spilled:
            del self.rows[size - self._spilled :]
        else:
            self.rows = []
            self._spilled = size

    def flush(self, channel: str | None = None) -> None:
        """Send what is held: job rows, counters, events and the new head, announced on
        `channel` (PostgreSQL's NOTIFY) when events were appended.

        Each statement is its own round trip, on purpose: in pipeline mode a client cut
        off mid-pipeline (a partition, not a closed socket) leaves its backend waiting for
        the rest without ever going idle, so `idle_in_transaction_session_timeout` never
        frees the log head's lock and every writer of the cluster waits (seen in
        tests/cluster/test_partition.py).
        """
        self.sql.flush_jobs()
        self.sql.flush_counts()
        if self.appended:
            self.spill()
            self.sql.set_head(self.head)
            if channel is not None:
                self.sql.notify(channel, self.head)


def _transient(exc: BaseException) -> bool:
    """SQLite's "database is locked", or a connection cut under the transaction (PostgreSQL
    backend terminated or restarted): the whole group is rolled back and runs again."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError) and "locked" in str(exc).lower()


def _log_busy(state: RetryCallState) -> None:
    assert state.outcome is not None
    exc = state.outcome.exception()
    log.warning("progress store busy, retrying (%s)", getattr(exc, "orig", exc))


class _Write(Generic[R]):
    __slots__ = ("detached", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[[Tx], R], *, detached: bool = False) -> None:
        self.fn = fn
        self.detached = detached
        self.done = threading.Event()
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommitter:
    """Runs writes from many threads in shared transactions (see the module doc)."""

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[Connection]],
        clock: Callable[[], float],
        on_commit: Callable[[int], None],
        *,
        announce: Callable[[Connection], str] | None = None,
        max_group: int = 256,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._begin = begin
        self._clock = clock
        self._on_commit = on_commit
        # The channel of the PostgreSQL NOTIFY that wakes other processes at commit, sent
        # by a group's transaction when it appended events, with the new head (one per
        # group: NOTIFY takes a global lock at commit).
        self._announce = announce
        self._max_group = max_group
        self._sleep = sleep
        self._lock = threading.Lock()
        self._queue: list[_Write[Any]] = []
        self._leading = False
        # The thread that leads for queued writes (started at the first one); `_handoff`
        # says a queued write found nobody leading and left the lead to it.
        self._background: threading.Thread | None = None
        self._handoff = False
        self._closed = False
        self._handed = threading.Condition(self._lock)
        # SQLite answers "database is locked" past its busy timeout: a transient condition
        # under heavy multi-process load, not a verdict; so is a PostgreSQL connection cut
        # under a transaction (the pool pre-pings a fresh one). Three attempts, 50 then
        # 100 ms apart.
        self._retrying = Retrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(3),
            wait=wait_incrementing(start=0.05, increment=0.05),
            sleep=sleep,
            before_sleep=_log_busy,
            reraise=True,
        )

    def run(self, fn: Callable[[Tx], R]) -> R:
        """Run `fn` in a committed transaction; its result, or its exception re-raised."""
        write = _Write(fn)
        self._enqueue(write)
        write.done.wait()
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]

    def submit(self, fn: Callable[[Tx], Any]) -> None:
        """Queue `fn` without waiting; it commits in order with later writes of any thread.

        A failure of `fn` is logged, not raised: use it only for writes nobody depends on.
        After `close`, the caller commits it itself: nothing queued is left unwritten.
        """
        self._enqueue(_Write(fn, detached=True), queued=True)

    def close(self) -> None:
        """Let the background leader commit what it was handed, and stop it (idempotent)."""
        with self._lock:
            self._closed = True
            self._handed.notify()
            background = self._background
        if background is not None and background is not threading.current_thread():
            background.join()

    def _enqueue(self, write: _Write[Any], *, queued: bool = False) -> None:
        """Queue a write; when nobody leads, lead the commit here (a waited write) or hand
        the lead to the background thread (a queued one). Leading drains the whole queue."""
        with self._lock:
            self._queue.append(write)
            if self._leading:
                return
            self._leading = True
            if queued and not self._closed:
                self._handoff = True
                if self._background is None:
                    self._background = threading.Thread(
                        target=self._lead_in_background,
                        name="sheetbatch-store-committer",
                        daemon=True,
                    )
                    self._background.start()
                self._handed.notify()
                return
        self._lead()

    def _lead_in_background(self) -> None:
        while True:
            with self._lock:
                while not self._handoff and not self._closed:
                    self._handed.wait()
                if not self._handoff:
                    return  # closed, with nothing handed over
                self._handoff = False
            self._lead()

    def _lead(self) -> None:
        while True:
            with self._lock:
                group = self._queue[: self._max_group]
                del self._queue[: self._max_group]
                if not group:
                    self._leading = False
                    return
            self._commit(group)

    def _commit(self, group: list[_Write[Any]]) -> None:
        try:
            self._with_retry(group)
        except BaseException as exc:
            # The group's transaction failed as a whole (the database is gone): every
            # write in it fails with the same error, none is half-applied.
            for write in group:
                if not write.done.is_set():
                    write.error = exc
            queued = sum(write.detached for write in group)
            if queued:
                # Nobody waits for these to hear it. The store still has such a job
                # running: its next waited write, or its lease's expiry, settles it.
                log.warning(
                    "%d queued progress writes were lost with their transaction: %s", queued, exc
                )
        finally:
            for write in group:
                write.done.set()

    def _with_retry(self, group: list[_Write[Any]]) -> None:
        # First without savepoints: a store write raises its own errors (ProgressError: an
        # illegal transition, a lost lease) before it writes anything, so they need no
        # rollback. Anything else (a constraint, a bug) rolls the whole group back, and the
        # group runs again with a savepoint around each write (its retries too).
        savepoints = False

        def attempt() -> tuple[list[tuple[Any, BaseException | None]], int]:
            nonlocal savepoints
            while True:
                outcomes: list[tuple[Any, BaseException | None]] = []
                xid: str | None = None
                committing = False
                try:
                    with self._begin() as conn:
                        tx = Tx(conn, self._clock())
                        xid = tx.xid
                        for write in group:
                            outcomes.append(self._one(tx, write, savepoints))
                        tx.flush(None if self._announce is None else self._announce(conn))
                        committing = True  # leaving the block sends COMMIT
                    return outcomes, (tx.head if tx.appended else 0)
                except _NeedsSavepoints:
                    savepoints = True
                except Exception as exc:
                    # A connection cut during COMMIT leaves the outcome unknown: the server
                    # may have committed before the link died. Running the group again
                    # would then apply it twice (its events duplicated), so ask first.
                    ambiguous = committing and xid is not None and _transient(exc)
                    if ambiguous and self._committed(str(xid)):
                        return outcomes, (tx.head if tx.appended else 0)
                    raise

        try:
            outcomes, appended = self._retrying(attempt)
        except DBAPIError as exc:
            if not isinstance(exc, OperationalError) and not exc.connection_invalidated:
                raise
            raise StoreUnavailable(f"progress store write failed: {exc.orig}") from exc
        for write, (result, error) in zip(group, outcomes, strict=True):
            write.result, write.error = result, error
            if write.detached and error is not None:
                log.info("a queued progress write was dropped: %s", error)
        if appended:
            self._on_commit(appended)

    def _committed(self, xid: str) -> bool:
        """Whether transaction `xid`, whose COMMIT got no answer, committed; asked on a new
        connection until the server knows (its old session may still be finishing).

        Raises StoreUnavailable (never retried) when nobody can tell: better an error than
        a group applied twice.
        """
        status: str | None = "unknown"
        for delay in _VERIFY_DELAYS:
            try:
                with self._begin() as conn:
                    status = HotStatements(conn).xact_status(xid)
            except DBAPIError as exc:
                if not _transient(exc) and not isinstance(exc, OperationalError):
                    raise
                status = "unknown"
            if status == "committed":
                log.warning("a COMMIT lost its answer but landed (transaction %s)", xid)
                return True
            if status == "aborted" or status is None:
                return False
            self._sleep(delay)
        raise StoreUnavailable(
            f"progress store write outcome unknown: transaction {xid} is {status} after a "
            "connection cut at COMMIT"
        )

    @staticmethod
    def _one(tx: Tx, write: _Write[Any], savepoints: bool) -> tuple[Any, BaseException | None]:
        mark = tx.mark()
        savepoint = tx.conn.begin_nested() if savepoints else None
        try:
            result = write.fn(tx)
        except Exception as exc:
            if isinstance(exc, OperationalError) or _transient(exc):
                raise
            if savepoint is None and not isinstance(exc, ProgressError):
                raise _NeedsSavepoints from exc
            if savepoint is not None:
                savepoint.rollback()
                # Opening the savepoint sent the held job updates: those held now are
                # this write's, rolled back with it.
                tx.sql.discard_jobs()
            tx.undo_to(mark)
            return None, exc
        if savepoint is not None:
            savepoint.commit()
        return result, None


class _NeedsSavepoints(Exception):
    """A write failed in a way that may have left partial changes: redo with savepoints."""
