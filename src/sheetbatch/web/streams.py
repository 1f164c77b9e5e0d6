"""The stream hub: one waiter on the store's log feed, fanning wakeups out to every SSE stream.

Each open stream holds a `Subscription`: a flag it sleeps on, no thread and no database
connection of its own. One hub thread (a greenlet under `sheetbatch serve`) blocks on
`store.wait()` and wakes every subscription when the log head moves. A subscription can also
be woken alone: when its client disconnects (under gevent the hub watches the socket, so the
stream ends at once instead of at its next write) or when the server shuts down.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from progress import Store
from progress.sse import EventFormatter

log = logging.getLogger(__name__)


class Subscription:
    """One stream's wait handle; satisfies `progress.sse.Waiter`."""

    def __init__(self, hub: StreamHub) -> None:
        self._hub = hub
        self._event = threading.Event()
        self.gone = False
        self._watcher: Any = None

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
        """Leave the hub (called when the stream ends, however it ends)."""
        self._hub._remove(self)
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.kill(block=False)


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

    @property
    def open_streams(self) -> int:
        """How many streams are open right now."""
        with self._lock:
            return len(self._subs)

    def subscribe(self, sock: socket.socket | None = None) -> Subscription:
        """A new stream's subscription; `sock` (gevent only) is watched for a disconnect."""
        sub = Subscription(self)
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
            sub._watcher = _watch_disconnect(sock, sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

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
                if self._linger > 0:
                    # Transitions come in bursts (rows move in step): waiting a moment lets
                    # a burst's commits land, so every stream wakes once for all of them.
                    time.sleep(self._linger)
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


def _watch_disconnect(sock: socket.socket, sub: Subscription) -> Any:
    """Under gevent: a greenlet that sees the client close its end and ends the stream."""
    try:
        import gevent
    except ImportError:  # pragma: no cover - gevent is a dependency
        return None

    def watch() -> None:
        try:
            # A client of an event stream sends nothing after its request: the socket only
            # becomes readable when the peer closes it (or resets it).
            data = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            data = b""
        if not data:
            sub.client_gone()

    return gevent.spawn(watch)
