"""The usual choice, measured as a baseline: flask-sse on Redis (127.0.0.1:6379).

A Flask app with flask-sse's blueprint runs on the same server as ours (gevent's pywsgi,
monkey-patched) in a child process; each stream is one Redis pub/sub subscription. The
publisher replays an event sequence with its original pacing (by default a synthetic batch
shaped like bench/sse_latency.py's: 60 rows x 14 events, 4 rows at a time, 0.15 s phases);
the same asyncio clients follow it and are forced to reconnect halfway, sending
`Last-Event-ID` (which flask-sse ignores: there is no history to replay).

Prints one JSON line: latency p50/p99 and events lost across the reconnect.
Usage: .venv/bin/python bench/flask_sse_baseline.py [--clients 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_SENT = re.compile(r'"sent": ?([0-9.e+-]+)')
REDIS_URL = os.environ.get("SSE_BENCH_REDIS", "redis://127.0.0.1:6379/15")


def serve(port: int, redis_url: str) -> None:
    """The flask-sse server (child process): gevent first, then Flask."""
    from gevent import monkey

    monkey.patch_all()
    import socket

    from flask import Flask
    from flask_sse import sse
    from gevent.pywsgi import WSGIHandler, WSGIServer

    class Handler(WSGIHandler):  # type: ignore[misc]
        def handle(self) -> None:
            # As gunicorn does (and as sheetbatch serve does): no Nagle delay on small writes.
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().handle()

    app = Flask("flask_sse_baseline")
    app.config["REDIS_URL"] = redis_url
    app.register_blueprint(sse, url_prefix="/stream")
    server = WSGIServer(("127.0.0.1", port), app, handler_class=Handler, log=None)
    server.start()
    print(f"serving on http://127.0.0.1:{server.server_port}", file=sys.stderr, flush=True)
    server.serve_forever()


def synthetic_trace(
    rows: int = 60, concurrency: int = 4, phase: float = 0.15
) -> list[tuple[float, str]]:
    """(time, type) of a batch like the sheetbatch benchmark's, without running one."""
    trace: list[tuple[float, str]] = []
    per_row = 4 * phase
    for row in range(rows):
        start = (row // concurrency) * per_row + 0.001 * (row % concurrency)
        trace.append((start, "job_started"))
        for p in range(4):
            t = start + p * phase
            trace += [
                (t, "phase_started"),
                (t + phase / 2, "phase_progress"),
                (t + phase, "phase_finished"),
            ]
        trace.append((start + per_row, "job_succeeded"))
    trace.sort()
    return trace


def bench_flask_sse(
    *, trace: list[tuple[float, str]], clients: int, gap: float, timeout: float
) -> dict[str, Any]:
    """Replay `trace` through flask-sse to `clients` clients; the figures."""
    import redis

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sse_latency import run_clients, summarise

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return {"error": f"Redis not reachable at {REDIS_URL}: {exc}"}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--port", "0", "--redis", REDIS_URL],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = ""
        for line in proc.stderr:
            match = re.search(r"serving on (http://\S+)", line)
            if match:
                url = match.group(1)
                break
        if not url:
            return {"error": "the flask-sse server did not start"}
        drain = threading.Thread(target=proc.stderr.read, daemon=True)
        drain.start()
        channel = "bench-" + secrets.token_hex(4)
        total = len(trace)
        result: dict[str, Any] = {}

        def event_time(message: tuple[str | None, str, str]) -> tuple[int, float] | None:
            event_id, _kind, data = message
            match = _SENT.search(data)
            if event_id is None or match is None:
                return None
            return int(event_id), float(match.group(1))

        def clients_thread() -> None:
            result["records"] = asyncio.run(
                run_clients(
                    f"{url}/stream?channel={channel}",
                    clients,
                    gap,
                    resume=lambda c: {} if c is None else {"Last-Event-ID": str(c)},
                    event_time=event_time,
                    reconnect_when=lambda rs: len(rs[0].order) >= total // 2,
                    timeout=timeout,
                )
            )

        thread = threading.Thread(target=clients_thread)
        thread.start()
        r = redis.Redis.from_url(REDIS_URL)
        deadline = time.monotonic() + 30
        while r.pubsub_numsub(channel)[0][1] < clients and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = trace[0][0]
        begin = time.time()
        for i, (t, kind) in enumerate(trace, start=1):
            delay = begin + (t - t0) - time.time()
            if delay > 0:
                time.sleep(delay)
            message = {"data": {"id": i, "type": kind, "sent": time.time()}, "type": kind, "id": i}
            r.publish(channel, json.dumps(message))
        time.sleep(0.5)
        r.publish(channel, json.dumps({"data": {"end": True}, "type": "end", "id": total + 1}))
        thread.join(timeout)
        records = result.get("records") or []
        figures = summarise(records, lambda rec: list(range(1, total + 1)))
        figures["events_published"] = total
        return figures
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--redis", default=REDIS_URL, help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.redis)
        return
    figures = bench_flask_sse(
        trace=synthetic_trace(), clients=args.clients, gap=args.gap, timeout=args.timeout
    )
    print(
        json.dumps(
            {
                "bench": "flask_sse_baseline",
                "clients": args.clients,
                "reconnect_gap_s": args.gap,
                "flask_sse_redis": figures,
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
