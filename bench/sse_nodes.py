"""SSE across two web nodes: 200 clients split over two `serve` processes on one PostgreSQL
store, following one batch whose rows run on Celery workers.

Each node learns of the workers' commits through LISTEN/NOTIFY (`progress/listener.py`).
Half the clients open their stream on node A, half on node B; halfway through every client
drops its connection and resumes on the OTHER node with `Last-Event-ID`, as a browser behind
a load balancer would after its node went away. Latency of an event = the client's receive
time minus the event's `time` (taken in the worker's transaction). Targets (issue 13): p99
delivery <= 150 ms, 0 lost and 0 duplicated across the reconnect.

Needs PostgreSQL at 127.0.0.1:5432 (db `test`) and RabbitMQ at 127.0.0.1:5672 (guest;
`rabbitmqctl` for a vhost of its own). The clients and the batch's pacing are those of
`bench/sse_latency.py` (browser-like keep-alive clients in their own processes).

Usage: .venv/bin/python bench/sse_nodes.py [--clients 200] [--rows 60] [--workers 2]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sse_latency import (
    PHASES,
    ROOT,
    _client_from,
    percentile,
    raise_nofile,
    start_server,
    summarise,
)

PG = "postgresql://postgres@127.0.0.1:5432/test"


def _vhost() -> tuple[str, str]:
    vhost = "bench_" + secrets.token_hex(4)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
    )
    return vhost, f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


class _PeakBackends:
    """The most PostgreSQL sessions the bench's processes held at once (sampled every 0.1 s;
    each process may hold `[store] pool_size`, issue 13)."""

    def __init__(self, application_name: str) -> None:
        self.name = application_name
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _PeakBackends:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        with psycopg.connect(PG, autocommit=True) as conn:
            while not self._stop.wait(0.1):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (self.name,),
                ).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="rows at once per worker")
    parser.add_argument("--phase-seconds", type=float, default=0.15)
    parser.add_argument("--gap", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    raise_nofile()
    schema = "ssenodes_" + secrets.token_hex(4)
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    # Every process of the bench names its connections, so their peak can be counted.
    db = f"{PG}?options=-csearch_path%3D{schema}&application_name={schema}"
    vhost, broker = _vhost()
    procs: list[subprocess.Popen[Any]] = []
    nodes = []
    try:
        with tempfile.TemporaryDirectory(prefix="sse-nodes-") as tmp:
            workdir = Path(tmp)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SHEETBATCH_")}
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
            env["SSE_BENCH_PHASE_SECONDS"] = str(args.phase_seconds)
            for i in range(args.workers):
                argv = [sys.executable, "-m", "sheetbatch", "worker", "--db", db]
                argv += ["--broker", broker, "--concurrency", str(args.concurrency)]
                argv += ["--name", f"node-bench-{i}"]
                procs.append(
                    subprocess.Popen(
                        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                )
            extra = ("--executor", "celery", "--broker", broker)
            for name in ("a", "b"):
                (workdir / name).mkdir()
                nodes.append(
                    start_server(
                        workdir / name, db, args.concurrency, args.phase_seconds, extra=extra
                    )
                )
            sheet = workdir / "a" / "nodes.csv"
            with sheet.open("w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["Company", "Website"])
                out.writerows([(f"Company {i}", f"https://c{i}.test") for i in range(args.rows)])
            with _PeakBackends(schema) as peak:
                figures = _run(args, nodes[0].url, nodes[1].url, sheet, db)
            figures["pg_backends_peak"] = peak.most
            figures["node_errors"] = [len(n.errors()) for n in nodes]
            figures["node_error_samples"] = [e for n in nodes for e in n.errors()][:5]
            figures["nodes_alive"] = [n.proc.poll() is None for n in nodes]
    finally:
        for n in nodes:
            n.proc.terminate()
        for p in procs:
            p.terminate()
        for proc in [*(n.proc for n in nodes), *procs]:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    figures["ok"] = bool(
        figures["p99_ms"] <= 150
        and figures["events_lost"] == 0
        and figures["duplicates"] == 0
        and figures["clients_ended"] == args.clients
        and all(figures["nodes_alive"])
        and not any(figures["node_errors"])
    )
    print(
        json.dumps(
            {
                "bench": "sse_nodes",
                "clients": args.clients,
                "rows": args.rows,
                "workers": args.workers,
                "targets": {"p99_ms": 150, "events_lost": 0, "duplicates": 0},
                **figures,
            }
        )
    )


def _run(args: argparse.Namespace, a: str, b: str, sheet: Path, db: str) -> dict[str, Any]:
    """Start the batch on node A, follow it from both nodes, cut everyone over; the figures."""
    from progress import open_store

    answer = httpx.post(f"{a}/api/batches", json={"sheet": str(sheet)}, timeout=60)
    answer.raise_for_status()
    batch_id = answer.json()["batch_id"]
    if answer.json()["batch"].get("executor") not in (None, "celery"):
        raise SystemExit(f"the batch did not go to the Celery workers: {answer.json()}")
    total = args.rows * (2 + 3 * len(PHASES))
    me = [sys.executable, str(ROOT / "bench" / "sse_latency.py")]
    spec = {
        "gap": args.gap,
        "total": total,
        "timeout": args.timeout,
        "keep_alive": True,
        "after_end": f"/api/batches/{batch_id}",
    }
    clients = []
    for first, other, n in ((a, b, args.clients // 2), (b, a, args.clients - args.clients // 2)):
        job = {
            **spec,
            "n": n,
            "url": f"{first}/events/batches/{batch_id}",
            "other_url": f"{other}/events/batches/{batch_id}",
        }
        clients.append(
            subprocess.Popen(
                [*me, "--client-worker", json.dumps(job)], stdout=subprocess.PIPE, text=True
            )
        )
    records = [_client_from(r) for c in clients for r in json.loads(c.communicate()[0])]
    store = open_store(db)
    try:
        deadline = time.monotonic() + 30
        while store.batch(batch_id)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        log = store.events_after(0, batch_id=batch_id, limit=1_000_000)
    finally:
        store.close()

    def expected(record: Any) -> list[int]:
        first = record.first_cursor or 0
        return [e["id"] for e in log if e["id"] > first]

    figures = summarise(records, expected)
    gaps = [r.gap[1] - r.gap[0] for r in records if r.gap]
    figures["events_in_batch"] = len(log)
    figures["clients_cut_over"] = len(gaps)
    figures["gap_p50_s"] = round(percentile(gaps, 50), 2) if gaps else None
    return figures


if __name__ == "__main__":
    main()
