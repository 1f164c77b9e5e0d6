"""Live events are written for the streams by the server's hub (`web/fanout.py`): a client
that stops reading while thousands of events come, an HTTP/1.0 client without chunked
coding, and a browser that reuses its connection afterwards must each still get the log
exactly, framed correctly.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from progress import open_store
from tests.web.support import Server, server_env, start_batch, start_server
from tests.web.test_workers import noop_sheet


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("slow")
    server = start_server(
        workdir,
        f"sqlite:///{workdir / 'slow.db'}",
        args=["--concurrency", "8", "--ping-interval", "5"],
        env=server_env(SHEETBATCH_PIPELINE="noop"),
    )
    try:
        yield server
    finally:
        server.stop()


def _host(server: Server) -> str:
    return server.url.removeprefix("http://")


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window: the server's writes stop being taken as soon as we stop reading.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.settimeout(60)
    return sock


class Reader:
    """Reads an HTTP response from a socket: the head, then chunks or bytes to the end."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        out, self.buf = self.buf.split(marker, 1)
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def chunked_body(self) -> bytes:
        parts = []
        while True:
            size = int(self.until(b"\r\n"), 16)
            data = self.exactly(size + 2)
            assert data.endswith(b"\r\n"), data[-10:]  # a chunk's framing is intact
            if size == 0:
                return b"".join(parts)
            parts.append(data[:-2])

    def to_eof(self) -> bytes:
        try:
            while True:
                self._fill()
        except EOFError:
            return self.buf


def _events(body: bytes) -> list[dict[str, Any]]:
    """The log events of an SSE body (no snapshot, ping, end), checked field by field."""
    out = []
    for block in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if fields.get("event") in (None, "snapshot", "end", "ping"):
            continue
        data = json.loads(fields["data"])
        assert fields["id"] == str(data["id"]) and fields["event"] == data["type"]
        out.append(data)
    return out


def _log(server: Server, batch_id: str, after: int) -> list[dict[str, Any]]:
    store = open_store(server.db_url)
    try:
        return store.events_after(after, batch_id=batch_id, limit=1_000_000)
    finally:
        store.close()


def _start(server: Server, name: str, rows: int) -> str:
    with server.client() as client:
        return start_batch(client, noop_sheet(server.sheets / name, rows))


def test_a_client_that_stops_reading_gets_every_event_once_and_can_reuse_the_connection(
    server: Server,
) -> None:
    batch_id = _start(server, "stall.csv", 3000)
    sock = _connect(server)
    try:
        target = f"/events/batches/{batch_id}?last_event_id=0"
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {_host(server)}\r\n\r\n".encode())
        reader = Reader(sock)
        head = reader.until(b"\r\n\r\n").decode("latin-1").lower()
        assert head.startswith("http/1.1 200") and "transfer-encoding: chunked" in head
        time.sleep(3)  # not reading: the server's writes for this stream fill the socket
        body = reader.chunked_body()
        assert b"event: end" in body.rstrip().split(b"\n\n")[-1]
        events = _events(body)
        assert events == _log(server, batch_id, 0)  # every event, once, in log order
        assert events[-1]["type"] == "batch_finished"
        # The same connection carries the next request: the response was closed correctly.
        sock.sendall(
            f"GET /api/batches/{batch_id} HTTP/1.1\r\nHost: {_host(server)}\r\n\r\n".encode()
        )
        again = reader.until(b"\r\n\r\n").decode("latin-1")
        assert again.startswith("HTTP/1.1 200")
    finally:
        sock.close()


def test_an_http_1_0_client_gets_the_live_stream_unchunked(server: Server) -> None:
    batch_id = _start(server, "old.csv", 1500)
    sock = _connect(server)
    try:
        sock.sendall(
            f"GET /events/batches/{batch_id} HTTP/1.0\r\nHost: {_host(server)}\r\n\r\n".encode()
        )
        reader = Reader(sock)
        head = reader.until(b"\r\n\r\n").decode("latin-1").lower()
        assert head.startswith("http/1.1 200") and "chunked" not in head
        body = reader.to_eof()  # HTTP/1.0: the server closes the connection at the end
    finally:
        sock.close()
    first = body.decode().split("\n\n", 1)[0]
    assert "event: snapshot" in first
    cursor = int(next(line[4:] for line in first.split("\n") if line.startswith("id: ")))
    assert b"\r\n" not in body  # no chunk framing in the stream
    assert _events(body) == _log(server, batch_id, cursor)
    assert body.rstrip().split(b"\n\n")[-1].startswith(b"id: ")
    assert b"event: end" in body.rstrip().split(b"\n\n")[-1]


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs `ss` (iproute2) to read the queue")
def test_the_listen_queue_holds_a_crowd_connecting_at_once(server: Server) -> None:
    # A thousand dashboards opening at once must not overflow the accept queue: the kernel
    # would drop their SYNs and each would wait 1-3 s for its retransmission.
    cap = int(re.search(r"at most (\d+) connections", server.output()).group(1))  # type: ignore[union-attr]
    port = _host(server).rsplit(":", 1)[1]
    listing = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    kernel = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert int(listing[2]) == min(cap, kernel) >= 1000  # Send-Q of a listener: its backlog
