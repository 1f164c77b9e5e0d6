"""SSE delivery latency with 200 concurrent clients following one batch on one node.

`sheetbatch serve` (gevent, SQLite) runs a batch of paced rows in-process; 200 SSE clients
(asyncio, in this process) follow `/events/batches/<id>`. Latency of an event =
the client's receive time minus the event's `time` (taken when its transaction began, so
the figure includes the commit). Halfway through, every client drops its connection, waits
`--gap` seconds and reconnects with `Last-Event-ID`: each client's events are then compared
with the log (lost = in the log but never received, duplicates = received twice).

The baseline, measured in the same run: flask-sse on Redis (bench/flask_sse_baseline.py) with
the same clients, the same event sequence and pacing (replayed from this run's log) and the
same forced reconnect. Target: p99 <= 100 ms, 0 events lost. Prints one JSON line.

Latency counts live deliveries: events committed while the client's connection was open
(events replayed after the forced reconnect, or committed before a connection's headers
arrived, are reported separately as `p99_ms_incl_replayed`). The clients use a lean asyncio
SSE parser: httpx-sse's per-message cost, not the server, would otherwise dominate.

Usage: .venv/bin/python bench/sse_latency.py [--clients 200] [--rows 60] [--no-baseline]
Debugging: SSE_BENCH_SERVER_LOG=file keeps the server's log; SSE_BENCH_PROFILE=file runs the
server under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("fetch", "parse", "enrich", "score")
_TIME = re.compile(r'"time":"([^"]+)"')
SERVE = [sys.executable, "-m", "sheetbatch", "serve"]


def paced() -> Any:
    """The benchmark's pipeline: four phases that each wait SSE_BENCH_PHASE_SECONDS (I/O)."""
    from pipeline.phase import Phase, Pipeline

    delay = float(os.environ.get("SSE_BENCH_PHASE_SECONDS", "0.15"))

    def step(name: str) -> Callable[[Any], Mapping[str, Any]]:
        def run(ctx: Any) -> Mapping[str, Any]:
            time.sleep(delay / 2)
            ctx.report(0.5, "half way")
            time.sleep(delay / 2)
            return {name: True}

        return run

    return Pipeline(name="paced", phases=[Phase(n, step(n)) for n in PHASES])


def parse_time(text: str) -> float:
    """An event's ISO 8601 UTC time as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Client:
    """One SSE client's record: what it received and when."""

    received: dict[int, float] = field(default_factory=dict)
    sent_at: dict[int, float] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    first_cursor: int | None = None
    gap: tuple[float, float] | None = None
    replayed: set[int] = field(default_factory=set)
    ended: bool = False
    error: str = ""


Message = tuple[str | None, str, str]  # (id, event, data) as an EventSource dispatches it
OPENED = "\x00opened"  # yielded once the response head arrived


async def sse_messages(url: str, headers: Mapping[str, str]) -> AsyncIterator[Message]:
    """A lean SSE client (asyncio streams, HTTP/1.1, chunked or not): the messages of `url`.

    httpx-sse costs tens of microseconds per message in Python; with 200 clients in one
    process that cost, not the server, would dominate the measured latency.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [
            f"GET {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {host}:{port}",
            "Accept: text/event-stream",
            "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if not head.startswith("HTTP/1.1 200"):
            raise RuntimeError(head.splitlines()[0])
        yield None, OPENED, ""
        chunked = "transfer-encoding: chunked" in head.lower()
        buffer = ""
        while True:
            if chunked:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                data = (await reader.readexactly(size + 2))[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    return
            buffer += data.decode()
            *blocks, buffer = buffer.split("\n\n")
            for block in blocks:
                event_id: str | None = None
                kind = "message"
                payload: list[str] = []
                for line in block.split("\n"):
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        payload.append(value)
                    elif name == "id":
                        event_id = value
                    elif name == "event":
                        kind = value
                if payload:  # comments and retry-only blocks are not dispatched
                    yield event_id, kind, "\n".join(payload)
    finally:
        writer.close()


async def follow(
    url: str,
    record: Client,
    reconnect: asyncio.Event,
    gap: float,
    *,
    resume: Callable[[int | None], dict[str, str]],
    event_time: Callable[[Message], tuple[int, float] | None],
) -> None:
    """Follow one stream to its end, dropping and resuming the connection once on `reconnect`."""
    cursor: int | None = None
    dropped = False
    opened = float("inf")
    while True:
        try:
            async for message in sse_messages(url, resume(cursor)):
                now = time.time()
                event_id_text, kind, _ = message
                if kind == OPENED:
                    opened = now
                    continue
                if kind == "end":
                    record.ended = True
                    return
                if kind == "snapshot":
                    cursor = record.first_cursor = int(event_id_text or 0)
                    continue
                parsed = event_time(message)
                if parsed is None:
                    continue
                event_id, sent = parsed
                if sent < opened:
                    # Committed before this connection was open: a replay, not live delivery.
                    record.replayed.add(event_id)
                record.order.append(event_id)
                record.received.setdefault(event_id, now)
                record.sent_at[event_id] = sent
                cursor = event_id
                if reconnect.is_set() and not dropped:
                    break
        except Exception as exc:  # a boundary: record and stop this client
            record.error = f"{type(exc).__name__}: {exc}"
            return
        if record.ended:
            return
        if not dropped and reconnect.is_set():
            dropped = True
            started = time.time()
            await asyncio.sleep(gap)
            record.gap = (started, time.time())
            continue
        return


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summarise(records: list[Client], expected: Callable[[Client], list[int]]) -> dict[str, Any]:
    """Latency percentiles (live events, and all), events lost and duplicated."""
    live: list[float] = []
    everything: list[float] = []
    lost = dup = 0
    ended = sum(1 for r in records if r.ended)
    for r in records:
        want = expected(r)
        lost += len(set(want) - set(r.received))
        dup += len(r.order) - len(set(r.order))
        for event_id, got in r.received.items():
            latency = (got - r.sent_at[event_id]) * 1000
            everything.append(latency)
            if event_id not in r.replayed:
                live.append(latency)
    return {
        "p50_ms": round(percentile(live, 50), 1),
        "p99_ms": round(percentile(live, 99), 1),
        "max_ms": round(max(live), 1) if live else None,
        "p99_ms_incl_replayed": round(percentile(everything, 99), 1),
        "live_deliveries": len(live),
        "deliveries": len(everything),
        "events_lost": lost,
        "duplicates": dup,
        "clients_ended": ended,
        "client_errors": sorted({r.error for r in records if r.error})[:3],
    }


async def run_clients(
    url: str,
    n: int,
    gap: float,
    *,
    resume: Callable[[int | None], dict[str, str]],
    event_time: Callable[[Message], tuple[int, float] | None],
    reconnect_when: Callable[[list[Client]], bool],
    timeout: float,
) -> list[Client]:
    """`n` clients following `url`; the forced reconnect happens when `reconnect_when` says."""
    records = [Client() for _ in range(n)]
    reconnect = asyncio.Event()
    tasks = [
        asyncio.create_task(follow(url, r, reconnect, gap, resume=resume, event_time=event_time))
        for r in records
    ]

    async def watch() -> None:
        while not reconnect.is_set():
            if reconnect_when(records):
                reconnect.set()
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    _done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    watcher.cancel()
    return records


# ------------------------------------------------------------------------------ sheetbatch
def start_server(workdir: Path, db: str, concurrency: int, phase_seconds: float) -> tuple[Any, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEETBATCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    env["SHEETBATCH_PIPELINE"] = "bench.sse_latency:paced"
    env["SSE_BENCH_PHASE_SECONDS"] = str(phase_seconds)
    command = SERVE
    if os.environ.get("SSE_BENCH_PROFILE"):  # profile the server: python -m cProfile ...
        command = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            os.environ["SSE_BENCH_PROFILE"],
            "-m",
            "sheetbatch.serve",
        ]
    proc = subprocess.Popen(
        [*command, "--port", "0", "--db", db, "--concurrency", str(concurrency)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"serving on (http://\S+?)/?$", line.strip())
        if match:
            threading.Thread(target=_drain, args=(proc.stderr,), daemon=True).start()
            return proc, match.group(1)
    raise RuntimeError("the server did not start")


def _drain(stream: Any) -> None:
    """Keep reading the server's log (to a file with SSE_BENCH_SERVER_LOG) so it never blocks."""
    target = os.environ.get("SSE_BENCH_SERVER_LOG")
    with open(target or os.devnull, "w") as out:
        for line in stream:
            out.write(line)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_sheetbatch(
    args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the batch with the clients; the figures and the batch's log (for the baseline)."""
    import httpx

    from progress import open_store

    db = f"sqlite:///{workdir / 'progress.db'}"
    proc, url = start_server(workdir, db, args.concurrency, args.phase_seconds)
    try:
        sheet = workdir / "bench.csv"
        with sheet.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Company", "Website"])
            writer.writerows([(f"Company {i}", f"https://c{i}.test") for i in range(args.rows)])
        answer = httpx.post(f"{url}/api/batches", json={"sheet": str(sheet)}, timeout=30)
        answer.raise_for_status()
        batch_id = answer.json()["batch_id"]
        total = args.rows * (2 + 3 * len(PHASES))

        def event_time(message: Message) -> tuple[int, float] | None:
            event_id, kind, data = message
            if kind == "ping" or not event_id:
                return None
            match = _TIME.search(data)
            assert match is not None, data
            return int(event_id), parse_time(match.group(1))

        records = asyncio.run(
            run_clients(
                f"{url}/events/batches/{batch_id}",
                args.clients,
                args.gap,
                resume=lambda c: {} if c is None else {"Last-Event-ID": str(c)},
                event_time=event_time,
                reconnect_when=lambda rs: args.gap >= 0 and len(rs[0].order) >= total // 2,
                timeout=args.timeout,
            )
        )
        store = open_store(db)
        try:
            log = store.events_after(0, batch_id=batch_id, limit=1_000_000)
        finally:
            store.close()

        def expected(r: Client) -> list[int]:
            first = r.first_cursor or 0
            return [e["id"] for e in log if e["id"] > first]

        figures = summarise(records, expected)
        figures["events_in_batch"] = len(log)
        figures["server_cpu_s"] = round(process_cpu(proc.pid), 2)
        figures["client_cpu_s"] = round(time.process_time(), 2)
        return figures, log
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--phase-seconds", type=float, default=0.15)
    parser.add_argument(
        "--gap",
        type=float,
        default=0.5,
        help="seconds offline at the forced reconnect (negative: none)",
    )
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sse-bench-") as tmp:
        ours, log = bench_sheetbatch(args, Path(tmp))
    result: dict[str, Any] = {
        "bench": "sse_latency",
        "clients": args.clients,
        "rows": args.rows,
        "concurrency": args.concurrency,
        "reconnect_gap_s": args.gap,
        "target_p99_ms": 100,
        "sheetbatch": ours,
    }
    if not args.no_baseline:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from flask_sse_baseline import bench_flask_sse

        result["flask_sse_redis"] = bench_flask_sse(
            trace=[(parse_time(e["time"]), e["type"]) for e in log],
            clients=args.clients,
            gap=args.gap,
            timeout=args.timeout,
        )
    result["ok"] = bool(
        ours["p99_ms"] <= 100
        and ours["events_lost"] == 0
        and ours["duplicates"] == 0
        and ours["clients_ended"] == args.clients
    )
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
