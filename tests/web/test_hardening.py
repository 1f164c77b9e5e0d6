"""The real server against bad clients: slow or idle sockets, floods, bodies and headers that
are wrong on purpose. Each is answered (or closed) without harm to anyone else."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.support import Server, start_server

HEADER_TIMEOUT = 1.0
CAP = 40


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a 1 s header deadline and at most 40 connections."""
    workdir = tmp_path_factory.mktemp("strict")
    (workdir / "config").mkdir()
    (workdir / "config" / "server.toml").write_text(
        f"[server]\nheader_timeout = {HEADER_TIMEOUT}\nmax_connections = {CAP}\n"
    )
    server = start_server(workdir, f"sqlite:///{workdir / 'strict.db'}")
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output()


def _address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(_address(server), timeout=10)
    return sock


def _read_all(sock: socket.socket, limit: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or `limit` passes)."""
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open; got {data[:200]!r}") from None
    return data


def _body(response: bytes) -> dict[str, object]:
    head, _, body = response.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    parsed: dict[str, object] = json.loads(body)
    return parsed


def test_a_connection_that_never_sends_a_request_is_closed(strict_server: Server) -> None:
    sock = _connect(strict_server)
    started = time.monotonic()
    assert _read_all(sock) == b""  # closed, nothing said
    assert time.monotonic() - started >= HEADER_TIMEOUT * 0.9
    sock.close()


def test_headers_trickled_byte_by_byte_still_meet_the_deadline(strict_server: Server) -> None:
    sock = _connect(strict_server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    answer = b""
    sock.settimeout(0.2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"X")  # one byte of a header every 0.2 s: never the end of them
        except OSError:
            break
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        answer += chunk
    sock.close()
    assert time.monotonic() < deadline, "a trickling client held the connection"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400")


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(strict_server: Server) -> None:
    sock = _connect(strict_server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = _read_all(sock)
    assert data.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in data
    sock.close()


def test_connections_beyond_the_cap_get_a_clear_503_and_health_returns(
    strict_server: Server,
) -> None:
    idle = [_connect(strict_server) for _ in range(CAP)]
    try:
        time.sleep(0.2)  # every one of them accepted and counted
        extra = _connect(strict_server)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = _read_all(extra)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"Retry-After: 2" in answer
        body = _body(answer)
        assert body["code"] == "unavailable" and f"at most {CAP}" in str(body["error"])
    finally:
        for sock in idle:
            sock.close()
    # The idle ones are gone (closed by us, or by the header deadline): health answers again.
    deadline = time.monotonic() + 10
    while True:
        try:
            health = httpx.get(f"{strict_server.url}/healthz", timeout=5)
            if health.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not recover from the flood"
        time.sleep(0.1)
    metrics = httpx.get(f"{strict_server.url}/metrics", timeout=5).text
    assert "sheetbatch_http_connections_refused_total 0" not in metrics


def test_a_chunked_body_over_the_limit_is_413(strict_server: Server) -> None:
    sock = _connect(strict_server)
    sock.sendall(
        b"POST /api/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 65536
    try:
        for _ in range(10_000_000 // len(chunk)):
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and stop reading first
    sock.settimeout(10)
    answer = sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"field":"body"' in answer


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"sheet": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_deeply_nested_json_is_400(strict_server: Server, body: bytes) -> None:
    answer = httpx.post(
        f"{strict_server.url}/api/batches",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "error": "the JSON body is nested too deeply",
        "code": "bad_request",
        "field": "body",
    }


def test_a_last_event_id_in_other_digits_gets_a_readable_400(strict_server: Server) -> None:
    sock = _connect(strict_server)
    sock.sendall(
        "GET /events/progress HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Last-Event-ID: ١٢٣\r\n\r\n".encode()
    )
    answer = _read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 400")
    body = _body(answer)
    assert body["field"] == "Last-Event-ID"
    assert body["error"] == (
        "Last-Event-ID: not a cursor: use the id of the last event received, in the digits 0-9 only"
    )


@pytest.mark.slow
def test_with_a_low_open_file_limit_idle_sockets_do_not_starve_health(tmp_path: Path) -> None:
    server = start_server(tmp_path / "nofile", f"sqlite:///{tmp_path / 'n.db'}", open_files=256)
    sockets: list[socket.socket] = []
    try:
        line = next(x for x in server.log if "connections at once" in x)
        assert "raised from 256" in line or "open-file limit 256)" not in line, line
        if "raised from 256" not in line:
            pytest.skip(f"the hard open-file limit here is 256: {line}")
        sockets = [_connect(server) for _ in range(300)]
        health = httpx.get(f"{server.url}/healthz", timeout=5)
        assert health.status_code == 200
    finally:
        for sock in sockets:
            sock.close()
        assert server.stop() == 0, server.output()


def test_a_body_that_never_arrives_whole_is_408_and_the_connection_closed(
    strict_server: Server,
) -> None:
    sock = _connect(strict_server)
    started = time.monotonic()
    sock.sendall(
        b"POST /api/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"sheet": '  # ... and the other 90 bytes never come
    )
    answer = _read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"not received within" in answer
    assert time.monotonic() - started < HEADER_TIMEOUT + 5
