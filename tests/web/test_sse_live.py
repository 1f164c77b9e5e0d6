"""Event streams of the real server (`sheetbatch serve`, gevent) read by a real SSE client."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent

from progress import Store, open_store
from tests.support.databases import postgres_schema_url
from tests.web.support import (
    Server,
    companies,
    metric,
    read_events,
    server_env,
    start_batch,
    start_server,
    wait_batch_done,
    wait_for,
    write_sheet,
)


def log_events(store: Store, after: int, **scope: str) -> list[dict[str, Any]]:
    return store.events_after(after, limit=100_000, **scope)


def as_log(events: list[ServerSentEvent]) -> list[dict[str, Any]]:
    """The log events of a stream (no snapshot, no end), as the dicts the log holds."""
    out = []
    for sse in events:
        if sse.event in ("snapshot", "end"):
            continue
        data = json.loads(sse.data)
        assert sse.id == str(data["id"]) and sse.event == data["type"]
        out.append(data)
    return out


def test_stream_headers_and_first_lines(client: httpx.Client) -> None:
    with client.stream("GET", "/events/progress") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        text = next(response.iter_text())
    retry, _, rest = text.partition("\n")
    # Each stream's reconnection time is 2 s moved by up to half of it (storms spread out).
    assert retry.startswith("retry: ") and 1000 <= int(retry[7:]) <= 3000
    assert rest.startswith("id: ")
    assert "event: snapshot\n" in text


def test_unknown_ids_and_bad_cursors_are_refused_before_streaming(client: httpx.Client) -> None:
    assert client.get("/events/progress/j-unknown").status_code == 404
    assert client.get("/events/batches/b-unknown").json()["field"] == "batch_id"
    bad = client.get("/events/progress", headers={"Last-Event-ID": "x1"})
    assert bad.status_code == 400 and bad.json()["field"] == "Last-Event-ID"
    assert client.get("/events/progress?last_event_id=-3").json()["field"] == "last_event_id"
    assert client.get("/events/progress/bad%20id").status_code == 400


def test_replay_after_a_forced_disconnect_equals_the_log(
    client: httpx.Client, server_store: Store, sheets: Path
) -> None:
    batch_id = start_batch(client, write_sheet(sheets / "replay.csv", companies(8, fail_every=3)))
    path = f"/events/batches/{batch_id}"
    # First connection: the snapshot, a few events, then the client drops the connection.
    received: list[ServerSentEvent] = []

    def stop_after_nine(sse: ServerSentEvent) -> bool:
        received.append(sse)
        return sum(1 for s in received if s.event not in ("snapshot", "end")) >= 9

    read_events(client, path, stop=stop_after_nine)
    snapshot = received[0]
    assert snapshot.event == "snapshot"
    cursor = int(snapshot.id)
    assert json.loads(snapshot.data)["cursor"] == cursor
    part_one = as_log(received)
    # Second connection resumes with the header a browser sends.
    rest = read_events(client, path, headers={"Last-Event-ID": str(part_one[-1]["id"])})
    assert rest[-1].event == "end"
    assert rest[0].event != "snapshot"
    part_two = as_log(rest)
    assert part_two[-1]["type"] == "batch_finished"
    # Third: the query parameter from the first cursor gives the same events again.
    again = as_log(read_events(client, path, params={"last_event_id": str(cursor)}))
    expected = log_events(server_store, cursor, batch_id=batch_id)
    assert part_one + part_two == expected  # no gap, no duplicate, same order and data
    assert again == expected


def test_concurrent_batches_never_mix(
    client: httpx.Client, web_server: Server, server_store: Store, sheets: Path
) -> None:
    results: dict[str, list[ServerSentEvent]] = {}
    errors: list[BaseException] = []

    def follow(key: str, path: str) -> None:
        try:
            with web_server.client() as own:
                results[key] = read_events(own, path)
        except BaseException as exc:
            errors.append(exc)

    ids: list[str] = []
    threads = []
    for i in range(3):
        ids.append(
            start_batch(client, write_sheet(sheets / f"mix{i}.csv", companies(5, prefix=f"M{i}")))
        )
        threads.append(
            threading.Thread(target=follow, args=(ids[-1], f"/events/batches/{ids[-1]}"))
        )
        if i == 0:
            job_id = server_store.jobs(batch_id=ids[0], limit=1)[0]["job_id"]
            threads.append(
                threading.Thread(target=follow, args=("job", f"/events/progress/{job_id}"))
            )
        for thread in threads[-2 if i == 0 else -1 :]:
            thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for batch_id in ids:
        events = results[batch_id]
        cursor = int(events[0].id)
        assert events[-1].event == "end"
        assert {e["batch_id"] for e in as_log(events)} == {batch_id}
        assert as_log(events) == log_events(server_store, cursor, batch_id=batch_id)
    job_stream = results["job"]
    assert {e["job_id"] for e in as_log(job_stream)} <= {job_id}
    assert job_stream[-1].event == "end"
    last = json.loads(job_stream[-2].data)
    if job_stream[-2].event == "snapshot":  # the job had already finished when it opened
        assert last["job"]["status"] in ("succeeded", "failed")
    else:
        assert last["type"] in ("job_succeeded", "job_failed")


def test_end_arrives_for_finished_queued_and_running_work(
    client: httpx.Client, server_store: Store, sheets: Path
) -> None:
    batch_id = start_batch(client, write_sheet(sheets / "end.csv", companies(3, fail_every=2)))
    wait_batch_done(client, batch_id)
    jobs = server_store.jobs(batch_id=batch_id)
    for job in jobs:
        events = read_events(client, f"/events/progress/{job['job_id']}")
        assert [e.event for e in events] == ["snapshot", "end"]  # the fast-job case (seed 001)
        assert json.loads(events[0].data)["job"]["status"] == job["status"]
    finished = read_events(client, f"/events/batches/{batch_id}")
    assert [e.event for e in finished] == ["snapshot", "end"]
    resumed = read_events(client, f"/events/batches/{batch_id}", params={"last_event_id": "1"})
    assert resumed[-2].event == "batch_finished" and resumed[-1].event == "end"
    # A job that has not started yet is known (200, queued), and its stream still ends.
    waiting = start_batch(client, write_sheet(sheets / "wait.csv", companies(6)))
    last_job = server_store.jobs(batch_id=waiting)[-1]
    answer = client.get(f"/api/progress/{last_job['job_id']}")
    assert answer.status_code == 200
    events = read_events(client, f"/events/progress/{last_job['job_id']}")
    assert events[-1].event == "end"
    assert json.loads(events[-2].data)["type"] == "job_succeeded"


def _open_raw_stream(url: str, path: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    data = b""
    while b"event: snapshot" not in data:
        data += sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 200")
    return sock


def test_a_client_that_disconnects_frees_its_stream_at_once(
    client: httpx.Client, web_server: Server
) -> None:
    base = metric(client, "sheetbatch_sse_open_streams")
    socks = [_open_raw_stream(web_server.url, "/events/progress") for _ in range(20)]
    assert wait_for(lambda: metric(client, "sheetbatch_sse_open_streams") == base + 20, 5)
    for sock in socks:
        sock.close()
    # Heartbeats come every 5 s here: only the disconnect watch can free them this fast.
    wait_for(lambda: metric(client, "sheetbatch_sse_open_streams") == base, 1.5, 0.02)


@pytest.fixture
def fast_ping_server(tmp_path: Path) -> Any:
    server = start_server(
        tmp_path / "ping", f"sqlite:///{tmp_path / 'ping.db'}", args=["--ping-interval", "0.2"]
    )
    yield server
    server.stop()


def test_heartbeat_comment_and_event_arrive_on_an_idle_stream(fast_ping_server: Server) -> None:
    with fast_ping_server.client() as c, c.stream("GET", "/events/progress") as response:
        text = ""
        for chunk in response.iter_text():
            text += chunk
            if text.count(": ping\n") >= 2:
                break
    assert ': ping\nevent: ping\ndata: {"cursor":0}\n\n' in text


def test_sigterm_cancels_running_batches_flushes_and_closes_streams(tmp_path: Path) -> None:
    workdir = tmp_path / "term"
    server = start_server(
        workdir,
        f"sqlite:///{tmp_path / 'term.db'}",
        args=["--concurrency", "2", "--ping-interval", "30"],
        env=server_env(SHEETBATCH_TEST_PHASE_SECONDS="0.3"),
    )
    sheet = write_sheet(server.sheets / "long.csv", companies(12))
    stream_done = threading.Event()
    seen: list[ServerSentEvent] = []

    def follow() -> None:
        try:
            with server.client() as own:
                read_events(own, "/events/progress", stop=lambda e: seen.append(e) and False)
        except httpx.HTTPError:
            pass
        finally:
            stream_done.set()

    try:
        with server.client() as c:
            batch_id = start_batch(c, sheet)
            wait_for(lambda: c.get(f"/api/batches/{batch_id}").json()["counts"]["running"] == 2)
        threading.Thread(target=follow, daemon=True).start()
        wait_for(lambda: seen)
        code = server.stop(signal.SIGTERM, timeout=30)
    finally:
        if server.proc.poll() is None:  # a failed step must not leave the server running
            server.stop(signal.SIGKILL)
    assert code == 0, server.output()
    assert stream_done.wait(5), "the stream was not closed by the shutdown"
    store = open_store(server.db_url)
    try:
        batch = store.batch(batch_id)
        statuses = {j["status"] for j in store.jobs(batch_id=batch_id)}
    finally:
        store.close()
    assert batch["status"] == "cancelled"
    assert "running" not in statuses and "queued" not in statuses
    cells = sheet.read_text(encoding="utf-8")
    assert "processing" not in cells and "queued" not in cells  # final statuses flushed


@pytest.mark.postgres
def test_postgresql_store_under_gevent(tmp_path: Path) -> None:
    for url in postgres_schema_url():
        server = start_server(tmp_path / "pg", url, args=["--concurrency", "3"])
        try:
            with server.client() as c:
                sheet = write_sheet(server.sheets / "pg.csv", companies(6, fail_every=3))
                batch_id = start_batch(c, sheet)
                events = read_events(c, f"/events/batches/{batch_id}")
                assert events[-1].event == "end"
                snap = wait_batch_done(c, batch_id)
                assert snap["counts"] == {
                    "queued": 0,
                    "running": 0,
                    "succeeded": 4,
                    "failed": 2,
                    "cancelled": 0,
                }
                store = open_store(url)
                try:
                    cursor = int(events[0].id)
                    assert as_log(events) == log_events(store, cursor, batch_id=batch_id)
                finally:
                    store.close()
        finally:
            assert server.stop() == 0, server.output()


def test_signing_out_closes_the_sessions_open_streams(tmp_path: Path) -> None:
    token = "Zq3-vN8_xT1pLw7Rk2sY-live"
    server = start_server(
        tmp_path / "auth",
        f"sqlite:///{tmp_path / 'auth.db'}",
        args=["--ping-interval", "30"],
        env=server_env(SHEETBATCH_API_TOKEN=token),
    )
    ended = threading.Event()
    try:
        with server.client(follow_redirects=False) as browser:
            assert browser.post("/login", data={"token": token}).status_code == 302
            page = browser.get("/").text
            csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            opened = threading.Event()

            def follow() -> None:
                with (
                    server.client(cookies=dict(browser.cookies)) as tab,
                    contextlib.suppress(httpx.HTTPError),
                ):
                    read_events(tab, "/events/progress", stop=lambda e: opened.set() or False)
                ended.set()

            threading.Thread(target=follow, daemon=True).start()
            assert opened.wait(10)
            assert browser.post("/logout", data={"csrf": csrf}).status_code == 302
            # With 30 s heartbeats, only the sign-out can end the stream this soon.
            assert ended.wait(5), "the stream outlived its session"
            again = httpx.get(f"{server.url}/api/batches", cookies=dict(browser.cookies), timeout=5)
            assert again.status_code == 401
    finally:
        assert server.stop() == 0, server.output()
