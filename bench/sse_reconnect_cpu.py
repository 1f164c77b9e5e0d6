"""Server CPU per SSE reconnect: what a reconnect storm costs the event loop, load-independent.

`sheetbatch serve` (gevent, SQLite) runs a batch whose rows then sit still (long phases), so
no live event flows while measuring. Clients then reconnect `--reconnects` times, `--wave`
at once, as EventSource does after a cut: a new connection, `GET /events/batches/<id>` with
`Last-Event-ID` a few events behind the head, read the replay up to the head, then close
(the server ends the stream on the disconnect). The figure is the server process's CPU
seconds (user + system, /proc/PID/stat) for all of it divided by the reconnects, minus the
CPU the idle server burns meanwhile (its log feed polls the head), measured just before.
CPU seconds are not stretched by other processes' load the way wall-clock times are.

The baseline, measured in the same run the same way: `GET /healthz` on new connections,
the smallest request through Flask, so `reconnect_vs_healthz` says how far a stream's start
is from the cheapest request the server answers.

Usage: .venv/bin/python bench/sse_reconnect_cpu.py [--reconnects 2000] [--wave 100]
       [--behind 5] [--src DIR]
SSE_BENCH_PROFILE=file runs the server under cProfile (as bench/sse_latency.py).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sse_latency import (
    ROOT,
    Conn,
    process_cpu,
    raise_nofile,
    start_server,
)


async def _reconnect(host: str, port: int, target: str, cursor: int, head: int) -> None:
    conn = await Conn.open(host, port)
    try:
        answer = await conn.send(
            host, port, target, {"Accept": "text/event-stream", "Last-Event-ID": str(cursor)}
        )
        if not answer.startswith("HTTP/1.1 200"):
            raise RuntimeError(answer.splitlines()[0])
        last = f"id: {head}\n".encode()
        async for piece in conn.body(answer):
            if last in piece:
                return
    finally:
        conn.close()


async def _healthz(host: str, port: int) -> None:
    conn = await Conn.open(host, port)
    try:
        answer = await conn.send(host, port, "/healthz", {})
        async for _ in conn.body(answer):
            pass
    finally:
        conn.close()


async def _waves(total: int, wave: int, one: Callable[[], Awaitable[None]]) -> None:
    done = 0
    while done < total:
        n = min(wave, total - done)
        await asyncio.gather(*(one() for _ in range(n)))
        done += n


def _cpu_of(pid: int, idle_rate: float, run: Callable[[], None]) -> tuple[float, float]:
    """(CPU seconds `run` cost the server beyond its idle rate, wall seconds)."""
    cpu, wall = process_cpu(pid), time.monotonic()
    run()
    time.sleep(0.5)  # the server handles the last disconnects
    elapsed = time.monotonic() - wall
    return process_cpu(pid) - cpu - idle_rate * elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reconnects", type=int, default=2000)
    parser.add_argument("--wave", type=int, default=100, help="reconnects at once")
    parser.add_argument("--behind", type=int, default=5, help="events replayed per reconnect")
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the server's code")
    args = parser.parse_args()
    raise_nofile()
    import httpx

    from progress import open_store

    with tempfile.TemporaryDirectory(prefix="sse-reconnect-") as tmp:
        workdir = Path(tmp)
        db = f"sqlite:///{workdir / 'progress.db'}"
        served = start_server(workdir, db, 4, 3600.0, args.src)
        try:
            sheet = workdir / "rows.csv"
            with sheet.open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["Company", "Website"])
                writer.writerows([(f"C{i}", f"https://c{i}.test") for i in range(args.rows)])
            answer = httpx.post(f"{served.url}/api/batches", json={"sheet": str(sheet)}, timeout=60)
            answer.raise_for_status()
            batch_id = answer.json()["batch_id"]
            store = open_store(db)
            try:
                head, stable = -1, 0
                while stable < 10:  # the rows have started and now sit in their phase
                    time.sleep(0.2)
                    now = store.last_event_id()
                    stable = stable + 1 if now == head else 0
                    head = now
            finally:
                store.close()
            pid = served.proc.pid
            host, port = "127.0.0.1", int(served.url.rsplit(":", 1)[1])
            target = f"/events/batches/{batch_id}"
            cursor = max(0, head - args.behind)
            # Warm up (imports, caches, the hub's threads), then the idle rate.
            asyncio.run(_waves(50, 10, lambda: _reconnect(host, port, target, cursor, head)))
            asyncio.run(_waves(50, 10, lambda: _healthz(host, port)))
            time.sleep(0.5)
            cpu0, wall0 = process_cpu(pid), time.monotonic()
            time.sleep(3.0)
            idle_rate = (process_cpu(pid) - cpu0) / (time.monotonic() - wall0)

            def reconnects() -> None:
                asyncio.run(
                    _waves(
                        args.reconnects,
                        args.wave,
                        lambda: _reconnect(host, port, target, cursor, head),
                    )
                )

            def healthz() -> None:
                asyncio.run(_waves(args.reconnects, args.wave, lambda: _healthz(host, port)))

            stream_cpu, stream_wall = _cpu_of(pid, idle_rate, reconnects)
            health_cpu, health_wall = _cpu_of(pid, idle_rate, healthz)
            errors = served.errors()
        finally:
            served.proc.terminate()
            served.proc.wait(60)
    per_reconnect = stream_cpu / args.reconnects * 1000
    per_healthz = health_cpu / args.reconnects * 1000
    result: dict[str, Any] = {
        "bench": "sse_reconnect_cpu",
        "src": str(args.src),
        "reconnects": args.reconnects,
        "wave": args.wave,
        "replayed_per_reconnect": head - cursor,
        "server_cpu_ms_per_reconnect": round(per_reconnect, 3),
        "server_cpu_ms_per_healthz": round(per_healthz, 3),
        "reconnect_vs_healthz": round(per_reconnect / per_healthz, 2) if per_healthz else None,
        "idle_cpu_share": round(idle_rate, 4),
        "wall_s": {"reconnects": round(stream_wall, 2), "healthz": round(health_wall, 2)},
        "server_errors": len(errors),
        "server_error_samples": errors[:3],
        "target_ms_per_reconnect": 0.3,
    }
    result["ok"] = per_reconnect <= 0.3 and not errors
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
