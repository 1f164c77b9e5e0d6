"""Rows/s on 1 and 2 `sheetbatch worker` processes (Celery on RabbitMQ, PostgreSQL store).

The `company` pipeline against fixture sites with 100 ms per request (their own process);
each worker runs `--concurrency` threads. Rows/s is measured from the store (first
job_started to last terminal event). Figures: T(1), T(2), the efficiency
E(2) = T(2) / (2·T(1)) (the 1-worker run is the baseline, measured in the same run), the
fraction of the I/O limit 2 workers reach (limit = workers × concurrency ÷ (requests per
row × latency)), and CPU seconds per process (each worker, the dispatcher).

The fixture server and the HTTP client cannot reach that paper limit themselves (a Python
server on the same two cores, a connection per site): the run also measures the I/O limit
with no sheetbatch at all - as many plain processes and threads as the 2-worker run, each
fetching a row's four pages (robots.txt, home, about, contact) on one connection - and
reports the fraction of that measured limit too. Needs
PostgreSQL at 127.0.0.1:5432 (db `test`) and RabbitMQ at 127.0.0.1:5672 (guest, rabbitmqctl).
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
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from e2e_throughput import Sites  # the sibling benchmark (bench/ is the script's directory)
from pipeline.registry import load_pipeline
from progress import Store, open_store
from sheetbatch.config import Settings
from sheetbatch.service import executor_for, services_for
from sheets_integration.batch import BatchProcessor, RunOptions
from sheets_integration.locate import open_sheet

PG = "postgresql://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"job_succeeded", "job_failed", "job_cancelled"}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _span(store: Store, batch_id: str) -> float:
    """Seconds from the first job_started to the last terminal event, from the log."""
    first, last, cursor = float("inf"), 0.0, 0
    while page := store.events_after(cursor, batch_id=batch_id, limit=5000):
        for event in page:
            at = _seconds(event["time"])
            if event["type"] == "job_started":
                first = min(first, at)
            elif event["type"] in TERMINAL:
                last = max(last, at)
        cursor = page[-1]["id"]
    return last - first


_BARE_CLIENT = """
import json, sys, threading, time
import httpx
sites, threads = json.loads(sys.stdin.read()), int(sys.argv[1])
lock = threading.Lock()
def work():
    # One client a thread (building one loads the CA bundle); each site is a new
    # connection all the same, as it is for the fetcher: every site has a port of its own.
    with httpx.Client(timeout=10) as client:
        while True:
            with lock:
                if not sites:
                    return
                site = sites.pop().rstrip("/")
            for path in ("/robots.txt", "/", "/about", "/contact"):
                client.get(site + path)
started = time.time()
pool = [threading.Thread(target=work) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
print(json.dumps([started, time.time()]))
"""


def bare_rows_per_s(urls: list[str], processes: int, threads: int) -> float:
    """Rows/s of plain clients doing a row's requests and nothing else (the I/O limit
    measured): `processes` × `threads`, the rows split between the processes."""
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", _BARE_CLIENT, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for i, client in enumerate(clients):
        assert client.stdin is not None
        client.stdin.write(json.dumps(urls[i::processes]))
        client.stdin.close()
    spans = []
    for client in clients:
        assert client.stdout is not None
        spans.append(json.loads(client.stdout.read()))
        client.wait()
    return len(urls) / (max(end for _, end in spans) - min(start for start, _ in spans))


def run(workers: int, sites: Sites, args: argparse.Namespace, broker: str) -> dict[str, Any]:
    schema = "bench_" + secrets.token_hex(4)
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    db = f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "SHEETBATCH_ALLOW_HOSTS": ",".join(sites.allow_hosts),
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store = open_store(db, poll_interval=0.05)
        for i in range(workers):
            argv = [sys.executable, "-m", "sheetbatch", "worker", "--db", db, "--broker", broker]
            argv += ["--concurrency", str(args.concurrency), "--name", f"bench{i}"]
            procs.append(
                subprocess.Popen(
                    argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        deadline = time.monotonic() + 60
        while sum(w.alive for w in store.workers()) < workers:
            if time.monotonic() > deadline:
                raise SystemExit("workers did not register")
            time.sleep(0.1)
        cpu_before = [_cpu_seconds(p.pid) for p in procs]
        with tempfile.TemporaryDirectory() as tmp:
            sheet_path = Path(tmp) / "companies.csv"
            with sheet_path.open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["Company", "Website"])
                for name in sorted(sites.urls)[: args.rows]:
                    writer.writerow([name, sites.urls[name]])
            settings = Settings(db=db, executor="celery", broker_url=broker)
            with services_for(settings) as services:
                processor = BatchProcessor(
                    store=store,
                    sheet=open_sheet(str(sheet_path)),
                    pipeline=load_pipeline("company"),
                    options=RunOptions(flush_interval=2.0),
                    services=services,
                )
                batch_id = processor.prepare()
                cpu = time.process_time()
                snap = processor.run(batch_id, pool=executor_for(store, settings))
                cpu = time.process_time() - cpu
        span = _span(store, batch_id)
        worker_cpu = [_cpu_seconds(p.pid) - b for p, b in zip(procs, cpu_before, strict=True)]
        store.close()
        return {
            "rows_per_s": round(args.rows / span, 2),
            "succeeded": snap["counts"]["succeeded"],
            "cpu_s_per_worker": [round(c, 2) for c in worker_cpu],
            "cpu_s_dispatcher": round(cpu, 2),
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # 60 rows per worker thread: the first and last rows of a run find some threads idle
    # (a ramp of about one row's time at each end), ~1 % of a run this long.
    parser.add_argument("--rows", type=int, default=1920)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    vhost = "bench_" + secrets.token_hex(4)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
    )
    broker = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    sites = Sites(args.rows, args.latency)
    try:
        one = run(1, sites, args, broker)
        two = run(2, sites, args, broker)
    finally:
        requests = sites.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
    bare_sites = Sites(args.rows, args.latency)
    try:
        bare2 = bare_rows_per_s(list(bare_sites.urls.values()), 2, args.concurrency)
    finally:
        bare_sites.stop()
    per_row = requests / (2 * args.rows)
    limit2 = 2 * args.concurrency / (per_row * args.latency)
    efficiency = two["rows_per_s"] / (2 * one["rows_per_s"])
    print(
        json.dumps(
            {
                "bench": "celery_scaling",
                "rows": args.rows,
                "concurrency_per_worker": args.concurrency,
                "latency_s": args.latency,
                "requests_per_row": round(per_row, 2),
                "one_worker": one,
                "two_workers": two,
                "efficiency_2": round(efficiency, 3),
                "limit_rows_per_s_2": round(limit2, 2),
                "fraction_of_limit_2": round(two["rows_per_s"] / limit2, 3),
                "bare_rows_per_s_2": round(bare2, 2),
                "bare_fraction_of_limit_2": round(bare2 / limit2, 3),
                "fraction_of_bare_2": round(two["rows_per_s"] / bare2, 3),
                "target_efficiency": 0.9,
                "target_fraction": 0.85,
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
