"""The stream hub: one waiter on the store's log feed, fanning wakeups out to every SSE stream.

Each open stream holds a `Subscription`: a flag it sleeps on, no thread and no database
connection of its own. One hub thread (a greenlet under `sheetbatch serve`) blocks on
`store.wait()` and wakes every subscription when the log head moves. A subscription can also
be woken alone: when its client disconnects (under gevent the hub watches the socket, so the
stream ends at once instead of at its next write), when the session it was opened with is
signed out, or when the server shuts down.

The disconnect watch is `disconnect.DisconnectWatch`; what streams share (snapshots, chunks,
encoded text) is in `sharing.py`.
"""

from __future__ import annotations

import gc
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable

from progress import Store
from progress.sse import Pushed, Scope
from progress.sse_wire import EventFormatter
from progress.steps import Step, StepCache
from sheetbatch.web.disconnect import DisconnectWatch
from sheetbatch.web.fanout import Direct, Frames, socket_fd
from sheetbatch.web.sharing import Encoded, FinishedCache, MarkCache, SnapshotCache, release_memory

log = logging.getLogger(__name__)


LINGER_PER_STREAM = 5e-6  # seconds of extra coalescing per open stream
MAX_EXTRA_LINGER = 0.05
IDLE_BEFORE_TRIM = 1.0  # seconds without a stream before the shared caches are let go


class Subscription:
    """One stream's wait handle; satisfies `progress.sse.Waiter`."""

    def __init__(self, hub: StreamHub, session: str | None = None) -> None:
        self._hub = hub
        self._event = threading.Event()
        self.gone = False
        # The dashboard session the stream was opened with (None: a bearer token or no auth).
        self.session = session
        self._watch: DisconnectWatch | None = None
        # Set while the hub writes this stream's live events itself (`push`).
        self.direct: Direct | None = None
        self._sock: socket.socket | None = None
        self._fd: int | None = None
        self._chunked: Callable[[], bool] = lambda: True

    @property
    def can_push(self) -> bool:
        """Whether the hub may write for this stream (gevent, a plain socket)."""
        return self._fd is not None

    def push(
        self,
        scope: Scope,
        scan: int,
        step: Callable[[int, int], Step],
        until: float,
        on_sent: Callable[[int], None] | None = None,
    ) -> Pushed:
        """Let the hub write the stream's live events until `until`, the end or a stop
        (`progress.sse.Pusher`); this greenlet writes only what the socket would not take."""
        assert self._fd is not None and self._sock is not None
        hub = self._hub
        direct = Direct(scope, scan, step, self._fd, self._chunked(), on_sent)
        self.direct = direct
        try:
            while True:
                if self.gone or hub.closed or direct.broken:
                    return Pushed(direct.scan, stop=True)
                if direct.pending:
                    # The socket took part of a frame: the rest goes out from here, parked
                    # on the socket (the hub skips this stream meanwhile).
                    pending, direct.pending = direct.pending, b""
                    direct.busy = True
                    try:
                        self._sock.sendall(pending)
                    except OSError:
                        return Pushed(direct.scan, stop=True)
                    finally:
                        direct.busy = False
                    continue
                if direct.ended or direct.behind:
                    return Pushed(
                        direct.scan,
                        ended=direct.ended,
                        behind=direct.behind,
                        wrote_at=direct.wrote_at,
                    )
                if hub.head > direct.scan:  # news the hub's last wave did not bring here
                    if direct.busy:  # the hub is preparing it (a database read): let it
                        self._event.wait(0.005)
                    else:
                        hub.deliver(direct, hub.head)
                    continue
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return Pushed(direct.scan, wrote_at=direct.wrote_at)
                self._event.clear()
                if self.gone or hub.closed or direct.needs_stream or hub.head > direct.scan:
                    continue
                self._event.wait(remaining)
        finally:
            direct.released = True
            self.direct = None

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
        self.compacted = MarkCache()
        self.frames = Frames(self.encoded)
        self._idle_since: float | None = None
        self._trim_pending = False

    @property
    def open_streams(self) -> int:
        """How many streams are open right now."""
        with self._lock:
            return len(self._subs)

    def subscribe(
        self,
        sock: socket.socket | None = None,
        *,
        session: str | None = None,
        chunked: Callable[[], bool] | None = None,
    ) -> Subscription:
        """A new stream's subscription; `sock` (gevent only) is watched for a disconnect and,
        given `chunked` (whether the response uses chunked transfer coding, asked once the
        headers are out), written to by the hub directly (`Subscription.push`)."""
        sub = Subscription(self, session)
        if sock is not None and chunked is not None and _gevent_sockets():
            sub._sock, sub._fd, sub._chunked = sock, socket_fd(sock), chunked
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
            if idle:
                self._idle_since = time.monotonic()
        if idle and not self.closed and not self._trim_pending:
            self._trim_pending = True
            threading.Thread(target=self._trim_when_idle, daemon=True).start()

    def _trim_when_idle(self) -> None:
        """Once no stream has been open for `IDLE_BEFORE_TRIM` seconds, give the memory of
        the shared caches back; a stream opening meanwhile calls it off.

        A crowd of dashboards fills them (snapshots, chunks, encoded texts, the feed's
        buffer); once it has gone they only hold memory. glibc keeps freed memory in its
        arenas unless asked (`malloc_trim`). The wait restarts whenever the last stream of
        another short visit leaves, so a crowd that thins out stream by stream still ends
        in one trim after its last stream.
        """
        try:
            while True:
                with self._lock:
                    since = self._idle_since
                    if self._subs or since is None or self.closed:
                        return
                wait = since + IDLE_BEFORE_TRIM - time.monotonic()
                if wait <= 0:
                    break
                time.sleep(wait + 0.01)
        finally:
            self._trim_pending = False
        with self._lock:
            if self._subs:
                return
            self._idle_since = None
        self.snapshots = SnapshotCache(self.store)
        self.steps = StepCache()
        self.encoded = Encoded()
        self.frames = Frames(self.encoded)
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
                # burst's commits land, so every stream gets one write for all of them. A
                # wave costs the loop a few us per stream the hub writes for (`Direct`):
                # with many streams, write a little less often (about 5 ms more at 1,000).
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
        # Streams the hub writes for get the news written here (`Direct`); the others, and
        # those whose own greenlet must act, are woken.
        with self._lock:
            subs = list(self._subs)
        head = self.head
        now = time.monotonic()
        for sub in subs:
            direct = sub.direct
            if direct is not None and not direct.needs_stream and head > direct.scan:
                self.deliver(direct, head, now)
            if direct is None or direct.needs_stream:
                sub.wake()

    def deliver(self, direct: Direct, head: int, now: float | None = None) -> None:
        """Write a pushed stream's step from its position with the log known up to `head`.

        Preparing the step may yield (a PostgreSQL read): `busy` keeps a second writer (the
        stream itself, or the next wave) away from this stream meanwhile.
        """
        if direct.needs_stream:
            return
        direct.busy = True
        try:
            step = self.steps.get(direct.scope, direct.scan, head, direct.step)
            frame = self.frames(step, direct.chunked)
        except Exception:
            # A loop boundary: the stream reads the same step itself and reports the error.
            log.exception("stream hub: preparing a stream's events failed")
            direct.behind = True
            return
        finally:
            direct.busy = False
        direct.deliver(step, frame, time.monotonic() if now is None else now)


def _gevent_sockets() -> bool:
    """Whether sockets are gevent's (one OS thread: the hub and the streams never run at
    the same time, which direct writes rely on)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))
