"""Bounded load: 200 browser-like (keep-alive) SSE clients while a 10,000-row batch runs.

Each client keeps ONE connection: it follows five job streams of the batch one after the
other, each to its `end`, then asks for the batch's snapshot on the same connection and
leaves - the pattern that used to abort the server (a disconnect watcher still waiting on a
socket pywsgi reused or closed). Meanwhile `/healthz` is probed on new connections. The
server must survive without logging an error, every stream must end with `end`, every probe
must be answered. (Latency figures are the benchmark's: bench/sse_latency.py.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from progress import open_store
from tests.web.keepalive import KeepAlive
from tests.web.support import Server, server_env, start_batch, start_server
from tests.web.test_workers import noop_sheet

pytestmark = pytest.mark.slow

CLIENTS = 200
STREAMS_EACH = 5
ERRORS = ("Traceback", "ConcurrentObjectUseError", "epoll", "Assertion", " ERROR ")


async def _client(host: str, port: int, jobs: list[str], batch_id: str) -> int:
    conn = KeepAlive(host, port)
    try:
        events = 0
        for job_id in jobs:
            events += await conn.stream_until_end(f"/events/progress/{job_id}")
        status, _body = await conn.get(f"/api/batches/{batch_id}")
        assert status.startswith("HTTP/1.1 200"), status
        return events
    finally:
        conn.close()


async def _probe(host: str, port: int, stop: asyncio.Event) -> list[str]:
    answers = []
    while not stop.is_set():
        conn = KeepAlive(host, port)
        try:
            status, _ = await asyncio.wait_for(conn.get("/healthz"), 10)
            answers.append(status)
        except (TimeoutError, OSError) as exc:
            answers.append(f"no answer: {exc!r}")
        finally:
            conn.close()
        await asyncio.sleep(0.1)
    return answers


async def _load(server: Server, batch_id: str, jobs: list[str]) -> tuple[list[int], list[str]]:
    host, port = server.url.removeprefix("http://").split(":")
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(host, int(port), stop))
    tasks = [
        _client(host, int(port), jobs[c::CLIENTS][:STREAMS_EACH], batch_id) for c in range(CLIENTS)
    ]
    try:
        counts = await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        stop.set()
    return list(counts), await probe


def test_200_keep_alive_clients_on_a_10000_row_batch(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "load",
        f"sqlite:///{tmp_path / 'load.db'}",
        args=["--concurrency", "8", "--ping-interval", "5"],
        env=server_env(SHEETBATCH_PIPELINE="noop"),
    )
    try:
        with server.client() as client:
            batch_id = start_batch(client, noop_sheet(server.sheets / "load.csv", 10_000))
        store = open_store(server.db_url)
        try:
            ids = [j["job_id"] for j in store.jobs(batch_id=batch_id)]
        finally:
            store.close()
        # Spread over the whole batch: clients come and go while it runs.
        jobs = ids[:: len(ids) // (CLIENTS * STREAMS_EACH)][: CLIENTS * STREAMS_EACH]
        started = time.monotonic()
        counts, probes = asyncio.run(_load(server, batch_id, jobs))
        assert server.proc.poll() is None, "the server died:\n" + server.output()
        assert len(counts) == CLIENTS and all(n >= STREAMS_EACH for n in counts)
        unanswered = [p for p in probes if not p.startswith("HTTP/1.1 200")]
        assert probes and not unanswered, f"{len(unanswered)} of {len(probes)}: {unanswered[:5]}"
        assert time.monotonic() - started < 120
    finally:
        code = server.stop() if server.proc.poll() is None else server.proc.returncode
    bad = [line for line in server.log if any(e in line for e in ERRORS)]
    assert bad == [], "\n".join(bad[:20])
    assert code == 0
