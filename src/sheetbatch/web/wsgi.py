"""The HTTP server of `sheetbatch serve`: gevent's pywsgi with deadlines and a connection cap.

Imported only by the server process, after gevent patched the standard library.

- Each connection's handler hands its socket to the app (`SOCKET_KEY`), so an event stream
  sees its client leave at once (`web/streams.py`), and sets TCP_NODELAY (small writes).
- A client has `header_timeout` seconds from the moment the server waits for a request -
  a new connection, or the next request on a keep-alive one - to the end of its headers;
  otherwise the connection is closed (idle) or answered 400 (headers half sent). A
  slowloris cannot hold a connection by trickling bytes: the deadline is total, not per read.
  The body gets as long again, counted from its first read: one that is not all there by
  then is answered `408` and the connection closed.
- The listen queue holds a burst of `max_connections` (`listen_backlog`), so a crowd that
  connects at once is not made to wait for SYN retransmissions.
- At most `max_connections` connections are open at once; one beyond is answered
  `503` with a JSON body and `Retry-After` at once, without reading its request, so a flood
  of idle sockets cannot exhaust the file descriptors that `/healthz` and streams need.
- At most `ACTIVE_REQUESTS` requests are inside the app at once (`Admission`); the rest wait
  parked. gevent runs ready greenlets first come, first served: a thousand dashboards
  reconnecting at once would otherwise queue ~0.5 ms of Flask each in front of the hub's
  next write to every open stream, and live events would wait half a second behind them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import socket
import time
from pathlib import Path
from typing import Any

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer
from werkzeug.exceptions import RequestTimeout

from sheetbatch.web.context import HANDLER_KEY, SOCKET_KEY

log = logging.getLogger(__name__)

# Descriptors kept for everything but client connections: the store, workers' pipes, logs.
RESERVED_FDS = 64


class _HeaderTimeout(Exception):
    """The request's headers did not arrive in time."""


class _BodyTimeout(Exception):
    """The request's body did not arrive in time."""


class BodyDeadline:
    """A request's `wsgi.input` with a total deadline from its first read.

    A body that has not arrived by then raises werkzeug's `RequestTimeout` in the view that
    reads it (a 408 answer), and `expired()` is called so the connection, which still holds
    the rest of the body, is closed rather than reused.
    """

    def __init__(self, stream: Any, seconds: float, expired: Any) -> None:
        self._stream = stream
        self._seconds = seconds
        self._expired = expired
        self._until: float | None = None

    def _read(self, name: str, *args: Any) -> Any:
        if self._until is None:
            self._until = time.monotonic() + self._seconds
        remaining = max(0.0, self._until - time.monotonic())
        try:
            with gevent.Timeout(remaining, _BodyTimeout):
                return getattr(self._stream, name)(*args)
        except _BodyTimeout:
            self._expired()
            raise RequestTimeout(
                f"the request body was not received within {self._seconds:g} s"
            ) from None

    def read(self, *args: Any) -> bytes:
        data: bytes = self._read("read", *args)
        return data

    def readline(self, *args: Any) -> bytes:
        line: bytes = self._read("readline", *args)
        return line

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._read("readlines", *args)
        return lines

    def __iter__(self) -> Any:
        while line := self.readline():
            yield line


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
        return soft, soft
    return soft, target


def connection_cap(wanted: int, open_files: int) -> int:
    """The connection cap: `wanted`, but below the open-file limit with room to spare."""
    return max(1, min(wanted, open_files - RESERVED_FDS))


def listen_backlog(max_connections: int) -> int:
    """The listen queue: room for a burst of every connection allowed, up to the kernel's cap.

    gevent's default (256) overflows when a thousand dashboards connect at once: the kernel
    then drops their SYNs and each client waits for its retransmission, 1 s, then 3 s.
    """
    try:
        kernel = int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        kernel = 4096
    return max(128, min(max_connections, kernel))


def busy_response(cap: int) -> bytes:
    """The 503 sent to a connection beyond the cap."""
    body = json.dumps(
        {
            "error": f"too many connections: this server holds at most {cap} at once; "
            "try again shortly",
            "code": "unavailable",
            "field": None,
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 2\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Handler(WSGIHandler):  # type: ignore[misc]
    """One connection: TCP_NODELAY, the socket in the environ, the header deadline."""

    header_timeout = 10.0

    def handle(self) -> None:
        # Events are small writes: without TCP_NODELAY, Nagle's algorithm holds one
        # back until the client's (delayed) ACK of the previous one, tens of ms later.
        with contextlib.suppress(OSError):
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()

    def read_requestline(self) -> str:
        # The deadline runs from here (idle keep-alive wait included) to the headers' end.
        self._deadline = gevent.Timeout(self.header_timeout, _HeaderTimeout)
        self._deadline.start()
        try:
            line: str = super().read_requestline()
        except _HeaderTimeout:
            self._deadline.close()
            return ""  # idle past the deadline (or a half-sent request line): close
        return line

    def handle_one_request(self) -> Any:
        try:
            return super().handle_one_request()
        finally:
            deadline = getattr(self, "_deadline", None)
            if deadline is not None:
                deadline.close()

    def read_request(self, raw_requestline: str) -> Any:
        try:
            return super().read_request(raw_requestline)
        except _HeaderTimeout:
            raise ValueError(
                f"request headers not received within {self.header_timeout:g} s"
            ) from None
        finally:
            self._deadline.close()

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ[SOCKET_KEY] = self.socket
        environ[HANDLER_KEY] = self
        environ["wsgi.input"] = BodyDeadline(
            environ["wsgi.input"], self.header_timeout, self._body_expired
        )
        return environ

    def _body_expired(self) -> None:
        self.close_connection = True
        # pywsgi would read the rest of the body before answering (to reuse the connection):
        # the flag it sets for an input in an unknown state makes it close instead.
        self.wsgi_input._chunked_input_error = True
        log.info("%s: request body not received in time; closing", self.client_address)


ACTIVE_REQUESTS = 8


class Admission:
    """A WSGI wrapper letting at most `slots` requests run the app at once (the rest wait).

    Only the app's call is gated: a stream's body is written afterwards, outside it (by the
    stream and the hub), so open streams never hold a slot.
    """

    def __init__(self, app: Any, slots: int = ACTIVE_REQUESTS) -> None:
        from gevent.lock import Semaphore

        self.app = app
        self._slots = Semaphore(slots)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._slots:
            return self.app(environ, start_response)


class CappedServer(WSGIServer):  # type: ignore[misc]
    """pywsgi's server with a cap on open connections (see the module docstring)."""

    def __init__(self, *args: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.connections = 0
        self.refused = 0

    def stats(self) -> tuple[int, int]:
        """(connections open now, connections refused since start)."""
        return self.connections, self.refused

    def handle(self, sock: socket.socket, address: Any) -> None:
        if self.connections >= self.max_connections:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning(
                    "connection cap reached (%d open): refused %d connections so far with 503",
                    self.connections,
                    self.refused,
                )
            self._refuse(sock)
            return
        self.connections += 1
        try:
            super().handle(sock, address)
        finally:
            self.connections -= 1

    def _refuse(self, sock: socket.socket) -> None:
        try:
            sock.sendall(busy_response(self.max_connections))
            sock.shutdown(socket.SHUT_WR)
            # Read what the client sent (briefly), so closing does not reset the connection
            # before it has read the answer.
            with gevent.Timeout(1.0, False):
                while sock.recv(65536):
                    pass
        except OSError:
            pass
        finally:
            sock.close()


def make_server(
    app: Any,
    host: str,
    port: int,
    *,
    max_connections: int,
    header_timeout: float,
) -> CappedServer:
    """The server for `app` (not yet listening)."""
    handler = type("SheetbatchHandler", (Handler,), {"header_timeout": header_timeout})
    return CappedServer(
        (host, port),
        Admission(app),
        backlog=listen_backlog(max_connections),
        handler_class=handler,
        max_connections=max_connections,
        log=logging.getLogger("sheetbatch.access"),
        error_log=logging.getLogger("sheetbatch.serve.errors"),
    )
