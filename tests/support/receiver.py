"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that answers as told.

`answers` is a list consumed one request at a time: a status code, `("hang", seconds)` to
answer 200 only after that long, `("status", code, {headers})`, or `("status", code,
{headers}, body)`; once it is used up every request gets 200. Every request is kept (headers
lower-cased, raw body); `cut_off` counts answers the client stopped reading.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """The server; `url` is its base URL, `allow` the --allow-host entry that reaches it."""

    def __init__(self, answers: list[Any] | None = None, *, port: int = 0) -> None:
        self.answers: list[Any] = list(answers or [])
        self.requests: list[Received] = []
        self.arrived = threading.Condition()
        self.release = threading.Event()
        self.cut_off = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.arrived:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.arrived.notify_all()
                headers: dict[str, str] = {}
                payload = b'{"ok": true}'
                if isinstance(answer, tuple) and answer[0] == "hang":
                    receiver.release.wait(answer[1])
                    answer = 200
                elif isinstance(answer, tuple):
                    _, answer, headers, *more = answer
                    payload = more[0] if more else payload
                self.send_response(int(answer))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    receiver.cut_off += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.allow = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Wait until `count` requests arrived; all so far."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.requests)} of {count} webhook requests arrived"
                self.arrived.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that answers 200 to everything (set `answers` to change that)."""
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


def free_port() -> int:
    """A port nothing listens on (connection refused), for a receiver that is down."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
