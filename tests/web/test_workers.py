"""Batches run in worker processes the server supervises: the server never freezes, a killed
worker's batch resumes, and a preparation error is still the request's answer."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import ServerSentEvent

from progress import open_store
from tests.web.support import (
    Server,
    read_events,
    server_env,
    start_batch,
    start_server,
    wait_batch_done,
    wait_for,
)


def noop_sheet(path: Path, rows: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Company", "Website"])
        writer.writerows((f"Co {i}", f"https://c{i}.test") for i in range(rows))
    return path


@pytest.fixture
def noop_server(tmp_path: Path) -> Iterator[Server]:
    """A server whose batches default to the CPU-bound `noop` pipeline."""
    server = start_server(
        tmp_path / "srv",
        f"sqlite:///{tmp_path / 'noop.db'}",
        args=["--concurrency", "8", "--ping-interval", "1"],
        env=server_env(SHEETBATCH_PIPELINE="noop"),
    )
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


@pytest.mark.slow
def test_a_cpu_bound_batch_never_freezes_health_or_streams(noop_server: Server) -> None:
    sheet = noop_sheet(noop_server.sheets / "big.csv", 10_000)
    with noop_server.client() as client:
        batch_id = start_batch(client, sheet)
    during: list[ServerSentEvent] = []
    stream_errors: list[BaseException] = []

    def follow() -> None:
        try:
            with noop_server.client() as own:
                read_events(
                    own, f"/events/batches/{batch_id}", stop=lambda e: during.append(e) and False
                )
        except BaseException as exc:
            stream_errors.append(exc)

    follower = threading.Thread(target=follow)
    follower.start()
    answered: list[float] = []
    running_seen_by_stream = 0
    with httpx.Client(base_url=noop_server.url, timeout=5.0) as probe:
        while True:
            started = time.monotonic()
            health = probe.get("/healthz")  # a timeout here (5 s) fails the test
            answered.append(time.monotonic() - started)
            assert health.status_code == 200
            status = probe.get(f"/api/batches/{batch_id}").json()["status"]
            if status == "running":
                running_seen_by_stream = max(running_seen_by_stream, len(during))
            else:
                break
            time.sleep(0.05)
    follower.join(60)
    assert not stream_errors
    assert len(answered) >= 10, "the batch ended before the server could be probed"
    # Events reached the stream while the batch was still running, not only at its end.
    assert running_seen_by_stream >= 100, running_seen_by_stream
    assert during[-1].event == "end"
    assert noop_server.stop() == 0, noop_server.output()


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_batch_finishes(noop_server: Server) -> None:
    sheet = noop_sheet(noop_server.sheets / "kill.csv", 3000)
    with noop_server.client() as client:
        batch_id = start_batch(client, sheet)
        wait_for(lambda: client.get(f"/api/batches/{batch_id}").json()["processed"] >= 100, 30)
        pid = wait_for(lambda: _worker_pid(noop_server, batch_id), 10)
        os.kill(pid, signal.SIGKILL)
        snap = wait_batch_done(client, batch_id, timeout=60)
    assert snap["status"] == "completed", snap
    assert snap["counts"]["succeeded"] == 3000
    assert any("killed by signal 9; starting another" in line for line in noop_server.log)
    store = open_store(noop_server.db_url)
    try:
        requeued = [
            e
            for e in store.events_after(0, batch_id=batch_id, limit=100_000)
            if e["type"] == "job_requeued"
        ]
    finally:
        store.close()
    assert requeued, "the dead worker's running rows were not requeued"
    cells = sheet.read_text(encoding="utf-8")
    assert "processing" not in cells and "queued" not in cells


def _worker_pid(server: Server, batch_id: str) -> int | None:
    """The pid of the worker process running the batch (a child of the server)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server.proc.pid and b"sheetbatch.worker" in cmdline:
            return int(entry.name)
    return None


def test_preparation_errors_are_the_request_answer(web_server: Server, sheets: Path) -> None:
    no_website = sheets / "no_website.csv"
    no_website.write_text("Company\nAcme\n", encoding="utf-8")
    with web_server.client() as client:
        answer = client.post("/api/batches", json={"sheet": str(no_website), "pipeline": "noop"})
        assert answer.status_code == 422
        body = answer.json()
        assert body["field"] == "sheet" and "Website" in body["error"]
        missing = client.post("/api/batches", json={"sheet": str(sheets / "gone.csv")})
        assert missing.status_code == 422 and "gone.csv" in missing.json()["error"]
