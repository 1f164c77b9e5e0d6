"""The HTTP transport: a threaded server on loopback whose handler asks a dispatcher."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Fault(StrEnum):
    """Failures the stand-in can inject into the next requests."""

    INTERNAL = "500"
    UNAVAILABLE = "503"
    RATE_LIMITED = "429"
    TIMEOUT = "timeout"
    """Hold the request (unprocessed) past the client's timeout, then drop the connection."""
    RESET = "reset"
    """Read the request, then reset the connection (TCP RST) without answering."""


@dataclass(frozen=True)
class Reply:
    """An answer: status, JSON body, headers; or a connection to drop (`drop`)."""

    status: int
    body: dict[str, Any] | None
    headers: Mapping[str, str]
    drop: Fault | None = None
    delay: float = 0.0


Dispatcher = Callable[[str, str, Mapping[str, str], bytes], Reply]
"""(method, raw target, lower-case headers, body) -> Reply."""


class HTTPServer(ThreadingHTTPServer):
    """Serves `dispatch` on `address`; `close_connections` unblocks keep-alive threads."""

    daemon_threads = False
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], dispatch: Dispatcher, stopping: threading.Event
    ) -> None:
        self.dispatch = dispatch
        self.stopping = stopping
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock every keep-alive connection so its thread can end."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, delayed ACKs cost ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self, method: str) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.dispatch(method, self.path, headers, body)
        if reply.drop is Fault.RESET:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if reply.drop is Fault.TIMEOUT:
            self.close_connection = True
            self.server.stopping.wait(reply.delay)
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps(reply.body or {}, indent=2).encode() + b"\n"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Vary", "Origin, X-Origin, Referer")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True
