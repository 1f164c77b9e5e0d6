"""Time per job transition in a 100,000-row batch vs a 1,000-row batch (target ratio ≤ 1.3).

Beside it, the seeds/003 pattern measured in the same run: batch metadata kept in one JSON
file that is rewritten whole on every transition, which grows linearly with the batch.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from progress import open_store
from progress.batch_writes import NewJob
from progress.store import Store

PHASES = ["resolve", "crawl", "extract", "score"]


def _transitions(store: Store, batch_id: str, jobs: int) -> tuple[int, float]:
    """Run `jobs` jobs through every transition; (transitions, seconds)."""
    count = 0
    started = time.perf_counter()
    for _ in range(jobs):
        job = store.claim_next(batch_id, "bench", 60)
        assert job is not None
        count += 1
        for i, name in enumerate(PHASES, start=1):
            store.phase_started(job["job_id"], i, 4, name, owner="bench")
            store.phase_finished(job["job_id"], seconds=0.0, owner="bench")
            count += 2
        store.succeed_job(job["job_id"], {"Name": "x"}, owner="bench")
        count += 1
    return count, time.perf_counter() - started


def store_per_transition(url: str, rows: int, jobs: int) -> float:
    store = open_store(url)
    try:
        batch = store.create_batch(
            sheet="bench.csv",
            pipeline="fast",
            phases=PHASES,
            jobs=[NewJob(row=i + 2, inputs={"Website": f"s{i}.test"}) for i in range(rows)],
        )
        count, seconds = _transitions(store, batch, jobs)
        return seconds / count
    finally:
        store.close()


def seed003_per_transition(path: Path, rows: int, transitions: int) -> float:
    """Seed 003's fix: save the whole batch metadata file on every job transition."""
    meta: dict[str, Any] = {
        "status": "processing",
        "jobs": [{"id": i, "status": "pending", "started_at": None} for i in range(rows)],
    }
    started = time.perf_counter()
    for n in range(transitions):
        meta["jobs"][n % rows]["status"] = "processing"
        path.write_text(json.dumps(meta))
    return (time.perf_counter() - started) / transitions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file per size)")
    parser.add_argument("--jobs", type=int, default=300, help="jobs timed per batch size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures: dict[str, Any] = {"bench": "store_transitions", "jobs_timed": args.jobs}
        for rows in (1_000, 100_000):
            url = args.db or f"sqlite:///{tmp}/store-{rows}.db"
            figures[f"store_us_per_transition_{rows}"] = round(
                1e6 * store_per_transition(url, rows, args.jobs), 1
            )
            figures[f"seed003_us_per_transition_{rows}"] = round(
                1e6 * seed003_per_transition(Path(tmp) / f"meta-{rows}.json", rows, 30), 1
            )
        figures["store_ratio_100k_over_1k"] = round(
            figures["store_us_per_transition_100000"] / figures["store_us_per_transition_1000"], 3
        )
        figures["seed003_ratio_100k_over_1k"] = round(
            figures["seed003_us_per_transition_100000"] / figures["seed003_us_per_transition_1000"],
            1,
        )
        figures["target_ratio"] = 1.3
        figures["meets_target"] = figures["store_ratio_100k_over_1k"] <= 1.3
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
