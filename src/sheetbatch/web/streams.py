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
import threading
import time

from progress import Store
from progress.sse import EventFormatter
from progress.steps import StepCache
from sheetbatch.web.disconnect import DisconnectWatch
from sheetbatch.web.sharing import Encoded, FinishedCache, MarkCache, SnapshotCache, release_memory

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
