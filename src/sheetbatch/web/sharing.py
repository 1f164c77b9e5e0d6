"""What the streams of one server share, so a crowd of them costs little more than one.

- `SnapshotCache`: one snapshot read per scope for the streams that start together;
- `FinishedCache`: one "has it finished?" read per scope for a reconnect storm;
- `Encoded`: a chunk's UTF-8 bytes, encoded once for every stream sending it;
- `release_memory`: hand freed heap back to the system once the crowd has gone.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable

from progress import BatchStatus, Store
from progress.sse import Scope, Snapshot, compaction_mark, read_snapshot
from sheetbatch.web.offload import offload

log = logging.getLogger(__name__)


class Encoded:
    """Text chunks as UTF-8 bytes, encoded once for every stream that sends the same chunk.

    Streams at the same position send the very same `str` object (`StepCache`); its bytes
    are kept by identity (with the text, so the id cannot be reused), a few thousand at most.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._bytes: dict[int, tuple[str, bytes]] = {}

    def __call__(self, text: str) -> bytes:
        key = id(text)
        found = self._bytes.get(key)
        if found is not None and found[0] is text:
            return found[1]
        data = text.encode("utf-8")
        if len(text) > 64:  # short ones (pings) are not worth keeping
            self._bytes[key] = (text, data)
            while len(self._bytes) > self._size:
                self._bytes.pop(next(iter(self._bytes)))
        return data


class SnapshotCache:
    """Stream snapshots, built once and shared by the streams that start together.

    A snapshot is read off the event loop (`offload`), one at a time per scope: a stream
    arriving while one is being read waits for it, and one arriving within `max_age`
    seconds after reuses it - it then replays the few events since its cursor from the
    feed's memory. Either way the stream is exact; 200 dashboards opening at once cost one
    read instead of 200.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_age: float = 1.0,
        size: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.max_age = max_age
        self.clock = clock
        self.size = size
        self.builds = 0
        self._lock = threading.Lock()
        self._entries: dict[Scope, _Entry] = {}

    def __call__(self, store: Store, scope: Scope) -> Snapshot:
        """The scope's snapshot (the `plan_stream` hook); raises UnknownJob/UnknownBatch."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None or (entry.done.is_set() and now - entry.started > self.max_age):
                entry = _Entry(started=now)
                self._entries[scope] = entry
                while len(self._entries) > self.size:
                    self._entries.pop(next(iter(self._entries)))
                builder = True
            else:
                builder = False
        if builder:
            try:
                entry.snapshot = offload(read_snapshot, store, scope)
                self.builds += 1
            except BaseException as exc:
                entry.error = exc
                with self._lock:
                    if self._entries.get(scope) is entry:
                        del self._entries[scope]
                raise
            finally:
                entry.done.set()
        else:
            entry.done.wait()
        if entry.error is not None:
            raise entry.error
        assert entry.snapshot is not None
        return entry.snapshot


class FinishedCache:
    """`already_finished` for a reconnect storm: one read per scope, shared.

    A thousand clients cut at once come back with cursors at most the log head. One read
    that found the scope NOT finished, with the head it saw, answers every cursor at or
    below that head: had the job or batch finished at or before such a cursor, the read
    would have seen it finished (a finish after it is replayed to the client anyway). A
    "finished" answer is not shared: the batch may reopen (a retry) right after. Small
    reads, made on the loop: sent to threads, a storm of them would contend with the loop
    for the GIL.
    """

    def __init__(self, *, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self.reads = 0
        self._running: dict[Scope, tuple[float, int]] = {}

    def __call__(self, store: Store, scope: Scope, cursor: int) -> bool:
        """Whether the scope was finished by an event at or before `cursor`."""
        now = self.clock()
        seen = self._running.get(scope)
        if seen is not None and now - seen[0] <= self.max_age and cursor <= seen[1]:
            return False
        head = store.last_event_id()
        finished, last = _finished_state(store, scope)
        self.reads += 1
        if finished:
            self._running.pop(scope, None)
            return last <= cursor
        self._running[scope] = (now, head)
        while len(self._running) > 1024:
            self._running.pop(next(iter(self._running)))
        return False


def _finished_state(store: Store, scope: Scope) -> tuple[bool, int]:
    """(finished, id of its last event) of a job or batch scope; (False, 0) for the log."""
    if scope.job_id is not None:
        job = store.job(scope.job_id)
        return job["status"].terminal, job["last_event_id"]
    if scope.batch_id is not None:
        batch = store.batch(scope.batch_id)
        return batch["status"] is not BatchStatus.RUNNING, batch["last_event_id"]
    return False, 0


class _Entry:
    __slots__ = ("done", "error", "snapshot", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.done = threading.Event()
        self.snapshot: Snapshot | None = None
        self.error: BaseException | None = None


def release_memory() -> bool:
    """Ask glibc to return freed heap memory to the system; whether it could be asked."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


class MarkCache:
    """`compaction_mark` for a reconnect storm: one read per scope per `max_age` seconds.

    A compaction removes only the progress reports of a batch that finished long ago, so a
    mark at most `max_age` old is as good as a fresh one for the clients of a storm.
    """

    def __init__(self, *, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self.reads = 0
        self._marks: dict[Scope, tuple[float, int]] = {}

    def __call__(self, store: Store, scope: Scope) -> int:
        """The scope's compaction mark; raises UnknownJob / UnknownBatch."""
        now = self.clock()
        seen = self._marks.get(scope)
        if seen is not None and now - seen[0] <= self.max_age:
            return seen[1]
        mark = compaction_mark(store, scope)
        self.reads += 1
        self._marks[scope] = (now, mark)
        while len(self._marks) > 1024:
            self._marks.pop(next(iter(self._marks)))
        return mark
