"""The store's own ceiling: job transitions per second the PostgreSQL log takes from N writers.

Each writer is a process with its own `Store` (as a `sheetbatch worker` is) running
`--threads` threads; every thread takes rows of one shared batch through the path a Celery
worker takes - `claim_job` (a conditional UPDATE bumping the lease epoch), then four
phases started and finished and the success, every write fenced by (owner, epoch). The
store's group committer folds the threads' concurrent transitions into shared
transactions; what it cannot fold is the log head, which every transaction of every
process moves. For `--writers 1,2,4,8` it reports transitions/s (counted from the log,
over the window every writer ran in), commits per second (PostgreSQL's own counter of the
bench's database) and the writers' CPU, so the README's estimate (how many workers and rows/s one
PostgreSQL carries, and what breaks first at 100x) rests on a measurement.

Usage: .venv/bin/python bench/store_ceiling.py [--writers 1,2,4,8] [--threads 8]
       [--seconds 10] [--db postgresql://postgres@127.0.0.1:5432/test]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PHASES = ["resolve", "crawl", "extract", "score"]
TRANSITIONS_PER_ROW = 1 + 2 * len(PHASES) + 1  # claim (job_started), phases, success


def writer(db: str, batch_id: str, threads: int, seconds: float, name: str) -> None:
    """One writer process: `threads` threads taking rows through every fenced transition."""
    from progress import open_store

    store = open_store(db)
    jobs = store.job_ids(batch_id)
    begun = time.time()
    stop = time.monotonic() + seconds
    done = [0]
    lock = threading.Lock()

    def work(offset: int) -> None:
        owner = f"{name}-t{offset}"
        rows = 0
        for job_id in jobs[offset::threads]:
            if time.monotonic() >= stop:
                break
            claim = store.claim_job(job_id, owner, 60)
            if claim is None:
                continue  # another writer took it
            for i, phase in enumerate(PHASES, start=1):
                store.phase_started(job_id, i, len(PHASES), phase, owner=owner, epoch=claim.epoch)
                store.phase_finished(job_id, seconds=0.0, owner=owner, epoch=claim.epoch)
            store.succeed_job(job_id, {"Name": "x"}, owner=owner, epoch=claim.epoch)
            rows += 1
        with lock:
            done[0] += rows

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    ended = time.time()
    store.close()
    print(json.dumps({"rows": done[0], "began": begun, "ended": ended}))


def point(base: str, writers: int, args: argparse.Namespace) -> dict[str, Any]:
    """A fresh schema and batch, `writers` processes for `args.seconds`; the figures."""
    import psycopg

    from progress import open_store
    from progress.batch_writes import NewJob

    # A database of its own: its commit counter then counts only this point's writers.
    name = "ceiling_" + secrets.token_hex(4)
    server = psycopg.connect(base, autocommit=True)
    server.execute(f"CREATE DATABASE {name}")
    db = base.rsplit("/", 1)[0] + "/" + name
    admin = psycopg.connect(db, autocommit=True)
    try:
        store = open_store(db)
        # More rows than the writers can take in the window: they never run dry.
        rows = int(args.seconds * 2500 * max(1, writers))
        batch_id = store.create_batch(
            sheet="ceiling.csv",
            pipeline="fast",
            phases=PHASES,
            jobs=[NewJob(row=i + 2, inputs={"Website": f"s{i}.test"}) for i in range(rows)],
        )
        head_before = store.last_event_id()
        xact_before = _commits(admin)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--writer",
                    json.dumps([db, batch_id, args.threads, args.seconds, f"w{n}"]),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for n in range(writers)
        ]
        writer_cpu = []
        windows = []
        done = 0
        for proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            err = proc.stderr.read() if proc.stderr is not None else ""
            _, _, usage = os.wait4(proc.pid, 0)
            if not out.strip():
                raise SystemExit(f"a writer failed:\n{err[-3000:]}")
            proc.returncode = 0
            writer_cpu.append(round(usage.ru_utime + usage.ru_stime, 2))
            report = json.loads(out.strip().splitlines()[-1])
            done += report["rows"]
            windows.append((report["began"], report["ended"]))
        # The window every writer was running in (their start-up is not the store's time).
        elapsed = max(e for _, e in windows) - min(b for b, _ in windows)
        events = store.last_event_id() - head_before
        commits = _commits(admin) - xact_before
        store.close()
        return {
            "writers": writers,
            "threads_each": args.threads,
            "rows": done,
            "transitions_per_s": round(events / elapsed, 1),
            "rows_per_s": round(done / elapsed, 1),
            "commits_per_s": round(commits / elapsed, 1),
            "transitions_per_commit": round(events / commits, 2) if commits else None,
            "writer_cpu_s": writer_cpu,
            "elapsed_s": round(elapsed, 2),
        }
    finally:
        admin.close()
        server.execute(f"DROP DATABASE {name} WITH (FORCE)")
        server.close()


def _commits(admin: Any) -> int:
    row = admin.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    admin.execute("SELECT pg_stat_clear_snapshot()")
    return int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer(*json.loads(args.writer))
        return
    points = [point(args.db, int(n), args) for n in args.writers.split(",")]
    best = max(points, key=lambda p: p["transitions_per_s"])
    print(
        json.dumps(
            {
                "bench": "store_ceiling",
                "cores": os.cpu_count(),
                "points": points,
                "ceiling_transitions_per_s": best["transitions_per_s"],
                "ceiling_rows_per_s": round(best["transitions_per_s"] / TRANSITIONS_PER_ROW, 1),
                "transitions_per_row": TRANSITIONS_PER_ROW,
            }
        )
    )


if __name__ == "__main__":
    main()
