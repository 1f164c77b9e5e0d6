"""One waiter per process: follows the log and fans new events out to every subscriber.

Subscribers (SSE streams, the sheet writer, the terminal bar) never poll the database
themselves. A single feed thread reads what was appended since the last known id - woken
at once by appends made in this process, and by a cheap poll of the log head for appends
made by other processes - keeps the newest events in a bounded buffer, and wakes all
subscribers through one condition variable.

On PostgreSQL a `Listener` (LISTEN/NOTIFY, `listener.py`) pokes the feed with every head
committed by any process; while it listens, the head poll is only a fallback and runs every
`fallback_poll` seconds instead of `poll_interval`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from progress.snapshots import LogEvent

log = logging.getLogger(__name__)

Event = LogEvent

_FOLLOW_WINDOW = 30.0  # seconds the buffer keeps filling after the last follower read


class Listener(Protocol):
    """Something that pokes the feed when another process commits (PostgreSQL NOTIFY)."""

    def start(self, feed: LogFeed) -> None:
        """Begin poking `feed`; it calls `feed.set_listening()` as its connection comes and goes."""

    def close(self) -> None:
        """Stop poking."""


class LogFeed:
    """Tracks the log head and the newest events for all subscribers of one process."""

    def __init__(
        self,
        read_after: Callable[[int, int], Sequence[Event]],
        read_head: Callable[[], int],
        *,
        poll_interval: float = 0.25,
        buffer_size: int = 20_000,
        listener: Listener | None = None,
        fallback_poll: float = 2.0,
    ) -> None:
        self._read_after = read_after
        self._read_head = read_head
        self._poll_interval = poll_interval
        self._fallback_poll = fallback_poll
        self._listener = listener
        self._listening = False
        self._buffer: deque[Event] = deque(maxlen=buffer_size)
        self._cond = threading.Condition()
        self._poke = threading.Event()
        self._head = -1  # unknown until the feed thread has read it once
        self._thread: threading.Thread | None = None
        self._closed = False
        self._subscribers = 0
        self._poked_head = -1
        # Events are read into the buffer only while someone follows them (SSE streams);
        # otherwise the feed tracks the head alone, which costs no read per commit.
        self._last_follow = float("-inf")

    # -- producers -------------------------------------------------------------------------
    def poke(self, head: int | None = None) -> None:
        """Called after a commit (with the new head): wake the feed now.

        A head the feed knows already is ignored (a process hears its own NOTIFY too).
        """
        if head is not None:
            with self._cond:
                if head <= max(self._head, self._poked_head):
                    return
                self._poked_head = head
        self._poke.set()

    def set_listening(self, listening: bool) -> None:
        """Called by the listener: whether every commit now pokes the feed.

        The feed then polls the head only every `fallback_poll` seconds; while not, every
        `poll_interval`. Either change reads the head at once (notifications may have been
        missed while nobody listened).
        """
        with self._cond:
            self._listening = listening
        self._poke.set()

    @property
    def listening(self) -> bool:
        """Whether a listener currently wakes the feed on other processes' commits."""
        with self._cond:
            return self._listening

    # -- subscribers -------------------------------------------------------------------------
    def head(self) -> int:
        """The newest event id this process knows of."""
        self._ensure_thread()
        with self._cond:
            while self._head < 0 and not self._closed:
                self._cond.wait(0.5)
            return self._head

    def wait(self, after: int, timeout: float) -> int:
        """Block until the log holds an event with id > `after`, or `timeout` passes.

        Returns the newest known id (which is <= `after` on timeout).
        """
        self._ensure_thread()
        with self._cond:
            self._subscribers += 1
            try:
                self._cond.wait_for(
                    lambda: self._closed or self._head > after, timeout=max(0.0, timeout)
                )
                return self._head
            finally:
                self._subscribers -= 1

    def buffered_after(self, after: int, limit: int) -> list[Event] | None:
        """Events with id > `after` from memory, or None when the buffer does not reach back."""
        with self._cond:
            self._last_follow = time.monotonic()
            if not self._buffer or self._head < 0:
                return None
            first = self._buffer[0]["id"]
            if after < first - 1 or self._buffer[-1]["id"] < self._head:
                # It does not reach back that far, or (the feed tracked only the head while
                # nobody followed) not up to the head: the database answers instead.
                return None
            out: list[Event] = []
            # Ids in the buffer are contiguous in log order; skip to the cursor quickly.
            start = max(0, int(after - first + 1))
            for i in range(start, len(self._buffer)):
                out.append(self._buffer[i])
                if len(out) >= limit:
                    break
            return out

    def gap_before(self, after: int) -> int | None:
        """The newest id missing for the buffer to serve a read from `after` - the id before
        its first event, or the head while it holds none - or None when nothing is missing
        or the gap is too long to fill (more than half of what it holds)."""
        with self._cond:
            if self._head < 0 or after >= self._head:
                return None
            upto = self._buffer[0]["id"] - 1 if self._buffer else self._head
            if upto <= after or upto - after > self._buffer.maxlen // 2:  # type: ignore[operator]
                return None
            return int(upto)

    def backfill(self, events: Sequence[Event]) -> bool:
        """Put events read from the database in front of the buffer, when they join it.

        A crowd of streams starting from one snapshot all read from its cursor, which is
        older than the buffer's first event (the buffer only fills once somebody follows):
        one stream fills the gap, the others are served from memory. Whether they joined.
        """
        if not events:
            return False
        ids = [int(e["id"]) for e in events]
        if ids != list(range(ids[0], ids[0] + len(ids))):
            return False  # not contiguous (a sequence gap): the database keeps answering
        with self._cond:
            joins = ids[-1] + 1 == self._buffer[0]["id"] if self._buffer else ids[-1] == self._head
            room = self._buffer.maxlen - len(self._buffer)  # type: ignore[operator]
            if not joins or room < len(events):
                return False
            self._buffer.extendleft(reversed(events))
            return True

    def trim(self) -> None:
        """Forget the buffered events (nobody follows now; readers fall back to the database
        until the buffer refills)."""
        with self._cond:
            self._buffer.clear()
            self._last_follow = float("-inf")

    def close(self) -> None:
        """Stop the feed thread and wake every subscriber."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._poke.set()
        if self._listener is not None:
            self._listener.close()
        with self._cond:
            thread = self._thread
        # A thread created but not yet started (`_ensure_thread` racing this) sees `_closed`
        # at its first step and ends by itself.
        if thread is not None and thread is not threading.current_thread() and thread.ident:
            thread.join(timeout=5)

    # -- the one waiter ------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None or self._closed:
            return
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sheetbatch-log-feed", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        if self._listener is not None:
            # Started from this thread, so under gevent it runs on the same hub.
            self._listener.start(self)
        try:
            head = self._read_head()
        except Exception:
            log.exception("log feed: cannot read the log head")
            head = 0
        with self._cond:
            self._head = head
            self._cond.notify_all()
        while not self._closed:
            with self._cond:
                interval = self._fallback_poll if self._listening else self._poll_interval
            poked = self._poke.wait(interval)
            self._poke.clear()
            if self._closed:
                break
            try:
                if time.monotonic() - self._last_follow < _FOLLOW_WINDOW:
                    self._catch_up()
                else:
                    self._track_head(poked)
            except Exception:
                # A loop boundary: the database may be briefly unavailable; try again.
                log.exception("log feed: reading new events failed")

    def _track_head(self, poked: bool) -> None:
        with self._cond:
            known = self._poked_head if poked else -1
        head = known if known > self._head else self._read_head()
        if head > self._head:
            with self._cond:
                self._head = head
                self._cond.notify_all()

    def _catch_up(self) -> None:
        while True:
            after = self._head
            batch = self._read_after(after, 2000)
            if not batch:
                return
            with self._cond:
                for event in batch:
                    if event["id"] > self._head:
                        if self._buffer and event["id"] != self._buffer[-1]["id"] + 1:
                            self._buffer.clear()
                        self._buffer.append(event)
                        self._head = event["id"]
                self._cond.notify_all()
            if len(batch) < 2000:
                return
