"""Seeing an event stream's client leave at once, under gevent: `DisconnectWatch`.

An I/O watcher on the connection's descriptor whose callback, run by gevent's hub, peeks
without consuming and without blocking. There is no second greenlet on the socket, so
pywsgi's own reads never meet another waiter (`ConcurrentObjectUseError`), and the watcher is
stopped by the stream's own greenlet when the stream's body closes - before pywsgi goes on to
read the next keep-alive request or closes the socket - so libev never holds a started
watcher on a descriptor that was closed (the `epoll_modify` abort). The earlier design killed
a watching greenlet with `block=False` while it sat in `recv(MSG_PEEK)`: the kill landed
later, after pywsgi had reused or closed the socket.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from typing import Any

log = logging.getLogger(__name__)


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
