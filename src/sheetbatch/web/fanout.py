"""Writing a live event to a thousand streams from one place: `Direct`, under gevent.

Waking each stream's greenlet so that it formats, encodes and writes the same chunk through
pywsgi costs about 100 us per stream (two switches, a wait loop, five generator layers,
pywsgi's framing); with 1,000 dashboards one commit then holds the event loop for 100 ms and
the streams fall behind as a crowd. Instead the hub writes the shared chunk itself: one
non-blocking `os.write` of the framed bytes per stream, a few microseconds. The stream's
greenlet stays parked; it is woken only for what it must do itself - the rest of a frame
the socket would not take (it then writes it blocking, cooperatively), the end, a heartbeat,
a client gone.

This is safe only because everything runs on one OS thread under gevent and nothing here
yields: while the hub writes, the stream's greenlet is parked, and it writes again only
after the hub has handed the stream back (`pending`). The frames are those pywsgi would write
(chunked transfer coding for HTTP/1.1, the bare bytes otherwise), so pywsgi's own last chunk
still closes the response correctly and the connection can be kept alive.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from progress.sse import Scope
from progress.steps import Step


def socket_fd(sock: Any) -> int | None:
    """The descriptor the hub may write to directly: a plain (not TLS) socket's, else None."""
    if sock is None or hasattr(sock, "do_handshake"):
        return None
    try:
        fd = int(sock.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return fd if fd >= 0 else None


class Frames:
    """A step's text as the bytes written to the socket, made once per step (bounded)."""

    def __init__(self, encode: Callable[[str], bytes], size: int = 1024) -> None:
        self._encode = encode
        self._size = size
        self._frames: dict[tuple[int, bool], tuple[Step, bytes]] = {}

    def __call__(self, step: Step, chunked: bool) -> bytes:
        key = (id(step), chunked)
        found = self._frames.get(key)
        if found is not None and found[0] is step:
            return found[1]
        data = self._encode(step.text)
        frame = b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
        self._frames[key] = (step, frame)
        while len(self._frames) > self._size:
            self._frames.pop(next(iter(self._frames)))
        return frame


@dataclass
class Direct:
    """A live stream the hub writes for: where it is and what is left for its own greenlet."""

    scope: Scope
    scan: int
    step: Callable[[int, int], Step]
    fd: int
    chunked: bool
    on_sent: Callable[[int], None] | None = None
    pending: bytes = b""  # the rest of a frame the socket did not take: the stream writes it
    ended: bool = False
    behind: bool = False
    broken: bool = False
    wrote_at: float | None = None
    busy: bool = field(default=False)  # the stream's greenlet is writing `pending` itself
    # The stream took itself back (it ended, or is replaying or pinging): its descriptor may
    # be closed and reused by another connection by now, so nothing may be written to it.
    # Preparing a step can yield (a PostgreSQL read), so this is checked after it.
    released: bool = False

    @property
    def needs_stream(self) -> bool:
        """Whether the stream's own greenlet must act before the hub writes again."""
        return bool(self.pending) or self.ended or self.behind or self.broken or self.busy

    def deliver(self, step: Step, frame: bytes, now: float) -> None:
        """Write `step` (framed as `frame`) without blocking; note what is left."""
        if self.released or self.needs_stream:
            return
        if step.text:
            try:
                written = os.write(self.fd, frame)
            except BlockingIOError:
                written = 0
            except OSError:
                self.broken = True
                return
            if written < len(frame):
                self.pending = frame[written:]
            self.wrote_at = now
            if self.on_sent is not None and step.sent:
                self.on_sent(step.sent)
        self.scan = step.scan
        if step.ended:
            self.ended = True
        elif not step.caught_up:
            self.behind = True
