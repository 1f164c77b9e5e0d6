"""Tick lag: scheduled time → batch created, for an every-1s schedule, two schedulers running.

Two `sheetbatch scheduler` processes share one store (SQLite by default, `--db` for
PostgreSQL); one leads. A row is appended to the CSV half a second before each due time, so
every tick has work and creates a batch; its lag is the batch's creation time minus the due
time (recorded by the store as the tick's `lag_seconds`). The baseline measured in the same
run is one scheduler alone on the same schedule. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from progress import open_store
from progress.schedule_model import TickState
from sheetbatch.config import load_settings
from sheetbatch.schedules import ScheduleInput, add_schedule

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test pipelines (tests.support.pipelines)
PIPELINE = "tests.support.pipelines:formula"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[k]


def _append_rows(path: Path, until: float, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set() and time.time() < until:
        now = time.time()
        # Half a second before the next whole second: the tick due then finds a new row.
        time.sleep(
            max(0.0, math.floor(now) + 0.5 - now) if now % 1 < 0.5 else math.floor(now) + 1.5 - now
        )
        n += 1
        with path.open("a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([f"Co {n}", f"https://co{n}.test"])


def measure(workdir: Path, db: str, schedulers: int, ticks: int) -> dict[str, float]:
    sheet = workdir / f"leads-{schedulers}.csv"
    sheet.write_text("Company,Website\n")
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
        "SHEETBATCH_PIPELINE": PIPELINE,
        "SHEETBATCH_FLUSH_INTERVAL": "0.2",
    }
    store = open_store(db)
    settings = load_settings(
        config_files=[], environ={}, overrides={"db": db, "pipeline": PIPELINE}
    )
    name = f"lag-{schedulers}-{int(time.time())}"
    sid = add_schedule(
        store, settings, ScheduleInput(sheet=str(sheet), every="1s", name=name)
    ).schedule_id
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sheetbatch", "scheduler", "--db", db, "--lease-seconds", "5"],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(schedulers)
    ]
    stop = threading.Event()
    appender = threading.Thread(
        target=_append_rows, args=(sheet, time.time() + ticks + 30, stop), daemon=True
    )
    appender.start()
    try:
        deadline = time.time() + ticks * 3 + 30
        while time.time() < deadline:
            done = [t for t in store.ticks(sid, limit=10_000) if t.batch_id and t.lag is not None]
            if len(done) >= ticks:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
    all_ticks = store.ticks(sid, limit=10_000)
    launched = sorted(
        (t for t in all_ticks if t.batch_id and t.lag is not None), key=lambda t: t.scheduled_for
    )[:ticks]
    lags = [float(t.lag or 0.0) for t in launched]
    due = [t.scheduled_for for t in all_ticks]
    store.close()
    return {
        "ticks": len(lags),
        "p50_ms": round(1000 * _percentile(lags, 50), 1),
        "p95_ms": round(1000 * _percentile(lags, 95), 1),
        "max_ms": round(1000 * max(lags), 1),
        "duplicate_due_times": len(due) - len(set(due)),
        "skipped_or_failed": sum(
            t.state not in (TickState.SUCCEEDED, TickState.RUNNING) for t in all_ticks
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="store URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--baseline-ticks", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db = args.db or f"sqlite:///{workdir / 'progress.db'}"
        baseline = measure(workdir, db, 1, args.baseline_ticks)
        two = measure(workdir, db, 2, args.ticks)
    print(
        json.dumps(
            {
                "benchmark": "tick_lag",
                "store": db.split(":", 1)[0],
                "schedule": "every 1s, a new row before each tick",
                "two_schedulers": two,
                "baseline_one_scheduler": baseline,
            }
        )
    )


if __name__ == "__main__":
    main()
