"""The stream hub: one waiter on the store's log feed, fanning wakeups out to every SSE stream.

Each open stream holds a `Subscription`: a flag it sleeps on, no thread and no database
connection of its own. One hub thread (a greenlet under `sheetbatch serve`) blocks on
`store.wait()` and wakes every subscription when the log head moves. A subscription can also
be woken alone: when its client disconnects (under gevent the hub watches the socket, so the
stream ends at once instead of at its next write), when the session it was opened with is
signed out, or when the server shuts down.

Watching for a disconnect (`DisconnectWatch`): an I/O watcher on the connection's descriptor
whose callback, run by gevent's hub, peeks without consuming and without blocking. There is
no second greenlet on the socket, so pywsgi's own reads never meet another waiter
(`ConcurrentObjectUseError`), and the watcher is stopped by the stream's own greenlet when the
stream's body closes - before pywsgi goes on to read the next keep-alive request or closes
the socket - so libev never holds a started watcher on a descriptor that was closed (the
`epoll_modify` abort). The earlier design killed a watching greenlet with `block=False` while
it sat in `recv(MSG_PEEK)`: the kill landed later, after pywsgi had reused or closed the socket.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from progress import Store
from progress.sse import EventFormatter, Scope, Snapshot, StepCache, read_snapshot
from sheetbatch.web.offload import offload

log = logging.getLogger(__name__)


LINGER_PER_STREAM = 20e-6  # seconds of extra coalescing per open stream
MAX_EXTRA_LINGER = 0.05


class Subscription:
    """One stream's wait handle; satisfies `progress.sse.Waiter`."""

    def __init__(self, hub: StreamHub, session: str | None = None) -> None:
        self._hub = hub
        self._event = threading.Event()
        self.gone = False
        # The dashboard session the stream was opened with (None: a bearer token or no auth).
        self.session = session
        self._watch: DisconnectWatch | None = None

    def head(self) -> int:
        """The newest committed event id the hub knows of (-1 while unknown)."""
        return self._hub.head

    def wait(self, after: int, timeout: float) -> int | None:
        """The newest known id once it is past `after` (or at `timeout`); None: stop now."""
        deadline = time.monotonic() + timeout
        while True:
            if self.gone or self._hub.closed:
                return None
            head = self._hub.head
            if head > after:
                return head
            self._event.clear()
            # Checked again after clear(): a wakeup between the check and clear() is not lost.
            if self.gone or self._hub.closed:
                return None
            if self._hub.head > after:
                return self._hub.head
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return head
            self._event.wait(remaining)

    def wake(self) -> None:
        """Wake the stream's waiter now."""
        self._event.set()

    def client_gone(self) -> None:
        """The client disconnected: the stream stops at once."""
        self.gone = True
        self._event.set()

    def close(self) -> None:
        """Leave the hub (called when the stream ends, however it ends, by its own greenlet)."""
        self._hub._remove(self)
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()


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
        return job["status"] in ("succeeded", "failed", "cancelled"), int(job["last_event_id"])
    if scope.batch_id is not None:
        batch = store.batch(scope.batch_id)
        return batch["status"] != "running", int(batch["last_event_id"])
    return False, 0


class _Entry:
    __slots__ = ("done", "error", "snapshot", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.done = threading.Event()
        self.snapshot: Snapshot | None = None
        self.error: BaseException | None = None


class StreamHub:
    """Every open SSE stream of this process and the one thread that wakes them."""

    def __init__(self, store: Store, *, head_timeout: float = 30.0, linger: float = 0.002) -> None:
        self.store = store
        self.head = -1
        self.closed = False
        self.formatter = EventFormatter()
        self._head_timeout = head_timeout
        self._linger = linger
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.opened_total = 0
        self.snapshots = SnapshotCache(store)
        self.steps = StepCache()
        self.encoded = Encoded()
        self.finished = FinishedCache()
        self._idle_since: float | None = None
        self._trim_pending = False

    @property
    def open_streams(self) -> int:
        """How many streams are open right now."""
        with self._lock:
            return len(self._subs)

    def subscribe(
        self, sock: socket.socket | None = None, *, session: str | None = None
    ) -> Subscription:
        """A new stream's subscription; `sock` (gevent only) is watched for a disconnect."""
        sub = Subscription(self, session)
        with self._lock:
            if self.closed:
                sub.gone = True
            self._subs.add(sub)
            self.opened_total += 1
            if self._thread is None and not self.closed:
                self._thread = threading.Thread(
                    target=self._run, name="sheetbatch-stream-hub", daemon=True
                )
                self._thread.start()
        if sock is not None:
            sub._watch = DisconnectWatch.start(sock, sub.client_gone)
        return sub

    def end_session(self, session: str) -> int:
        """End every stream opened with this dashboard session (signed out); how many."""
        with self._lock:
            subs = [s for s in self._subs if s.session == session]
        for sub in subs:
            sub.client_gone()
        return len(subs)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)
            idle = not self._subs
        if idle and not self.closed:
            self._idle_since = time.monotonic()
            if not self._trim_pending:
                self._trim_pending = True
                threading.Thread(target=self._trim_later, daemon=True).start()

    def _trim_later(self) -> None:
        time.sleep(1.1)
        self._trim_pending = False
        self._trim_if_idle()

    def _trim_if_idle(self) -> None:
        """With no stream open for a moment, give the memory of the shared caches back.

        A crowd of dashboards fills them (snapshots, chunks, encoded texts, the feed's
        buffer); once it has gone they only hold memory. glibc keeps freed memory in its
        arenas unless asked (`malloc_trim`).
        """
        if self._idle_since is None or time.monotonic() - self._idle_since < 1.0:
            return
        with self._lock:
            if self._subs:
                self._idle_since = None
                return
        self._idle_since = None
        self.snapshots = SnapshotCache(self.store)
        self.steps = StepCache()
        self.encoded = Encoded()
        self.formatter = EventFormatter()
        self.store.feed.trim()
        gc.collect()
        released = release_memory()
        log.info("no stream open: shared caches dropped (memory returned: %s)", released)

    def close(self) -> None:
        """End every stream now (server shutdown); the hub thread stops."""
        with self._lock:
            self.closed = True
            subs = list(self._subs)
        for sub in subs:
            sub.wake()

    def _run(self) -> None:
        self.head = self.store.wait(-1, self._head_timeout)
        self._wake_all()
        while not self.closed:
            started = time.monotonic()
            try:
                head = self.store.wait(self.head, self._head_timeout)
            except Exception:
                # A loop boundary: the store may be closing or briefly unavailable.
                log.exception("stream hub: waiting on the log feed failed")
                time.sleep(0.5)
                continue
            if head > self.head:
                # Transitions come in bursts (rows move in step): waiting a moment lets a
                # burst's commits land, so every stream wakes once for all of them. Waking
                # N streams costs the loop ~N x 30 us: with many streams, wake less often
                # (about 20 ms more at 1,000), or the wakes alone would fill the loop.
                linger = self._linger + min(MAX_EXTRA_LINGER, LINGER_PER_STREAM * len(self._subs))
                if linger > 0:
                    time.sleep(linger)
                    head = max(head, self.store.wait(head, 0))
                self.head = head
                self._wake_all()
            elif time.monotonic() - started < 0.01:
                # The feed answered at once without news: it is closed. Do not spin.
                time.sleep(0.1)

    def _wake_all(self) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.wake()


class DisconnectWatch:
    """Calls `on_gone` once when the peer of `sock` closes or resets the connection.

    Under gevent only (a hub I/O watcher; see the module docstring); `stop()` must be called
    by the greenlet that owns the connection before it reads from or closes the socket again.
    """

    def __init__(self, watcher: Any, fd: int, on_gone: Any, raw: Any) -> None:
        self._watcher = watcher
        self._fd = fd
        self._on_gone = on_gone
        self._raw = raw

    @classmethod
    def start(cls, sock: socket.socket, on_gone: Any) -> DisconnectWatch | None:
        """Start watching; None where it cannot (no gevent hub, or a socket without fd)."""
        monkey = sys.modules.get("gevent.monkey")
        if monkey is None or not monkey.is_module_patched("socket"):
            return None
        import gevent

        try:
            fd = sock.fileno()
        except OSError:
            return None
        if fd < 0:
            return None
        raw = monkey.get_original("socket", "socket")
        watcher = gevent.get_hub().loop.io(fd, 1)  # 1: readable
        watch = cls(watcher, fd, on_gone, raw)
        watcher.start(watch._readable)
        return watch

    def _readable(self) -> None:
        # Runs in the hub: only non-blocking calls. The peek consumes nothing, so a request
        # that follows on this connection (pipelined) is still read by pywsgi afterwards.
        try:
            raw = self._raw(fileno=self._fd)
        except OSError:
            self.stop()
            self._on_gone()
            return
        try:
            data: bytes | None = raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return  # a spurious wakeup: keep watching
        except OSError as exc:
            data = b"" if exc.errno != errno.EINTR else None
        finally:
            raw.detach()  # the descriptor stays pywsgi's
        if data is None:
            return
        self.stop()  # readable with data: nothing more to learn without consuming it
        if not data:
            self._on_gone()

    def stop(self) -> None:
        """Stop and release the watcher (idempotent)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()


def release_memory() -> bool:
    """Ask glibc to return freed heap memory to the system; whether it could be asked."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))
