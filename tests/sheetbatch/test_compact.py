"""`sheetbatch compact` and the automatic policy (`Compactor`), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from progress import Store, open_store
from progress.batch_writes import NewJob
from progress.compaction import PROGRESS_EVENTS
from sheetbatch.compactor import LEASE, Compactor
from tests.progress.test_leases import Clock
from tests.support.cli import sheetbatch

PHASES = ["resolve", "crawl"]


def _finished_batch(store: Store, rows: int = 3) -> str:
    jobs = [NewJob(row=r + 2, inputs={}) for r in range(rows)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="p", phases=PHASES, jobs=jobs)
    while (job := store.claim_next(batch_id, "w", 30)) is not None:
        store.phase_started(job["job_id"], 1, 2, PHASES[0], owner="w")
        store.advance(job["job_id"], seconds=0.1, owner="w", next_phase=(2, 2, PHASES[1]))
        store.succeed_job(job["job_id"], {"Name": "x"}, owner="w", phase_seconds=0.1)
    return batch_id


def _types(store: Store, batch_id: str) -> list[str]:
    return [e["type"] for e in store.events_after(0, batch_id=batch_id, limit=10_000)]


def test_compact_removes_progress_reports_and_says_what_it_did(db_url: str, tmp_path: Path) -> None:
    store = open_store(db_url)
    try:
        batch_id = _finished_batch(store)
        done = sheetbatch(["compact", "--db", db_url], cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "compacted 1 batch: 12 events removed"  # 3 jobs x 4 phase events
        assert lines[1] == f"  {batch_id}"
        assert lines[-1].startswith("store size: ") and " before, " in lines[-1]
        assert not set(_types(store, batch_id)) & set(PROGRESS_EVENTS)
        assert _types(store, batch_id).count("job_succeeded") == 3

        again = sheetbatch(["compact", "--db", db_url, "--json"], cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        outcome = json.loads(again.stdout)
        assert (outcome["batches"], outcome["events_removed"]) == ([], 0)
        assert outcome["bytes_before"] > 0 and outcome["bytes_after"] > 0
    finally:
        store.close()


def test_compact_refuses_a_running_or_unknown_batch_and_a_held_lease(
    db_url: str, tmp_path: Path
) -> None:
    store = open_store(db_url)
    try:
        running = store.create_batch(
            sheet="r.csv", pipeline="p", phases=PHASES, jobs=[NewJob(row=2, inputs={})]
        )
        refused = sheetbatch(["compact", running, "--db", db_url], cwd=tmp_path)
        assert refused.returncode == 2
        assert "still running" in refused.stderr and running in refused.stderr
        unknown = sheetbatch(["compact", "b-nosuchbatch", "--db", db_url], cwd=tmp_path)
        assert unknown.returncode == 2 and "unknown batch" in unknown.stderr

        finished = _finished_batch(store)
        assert store.acquire_lease(LEASE, "another-host:1:compactor", 600) is not None
        busy = sheetbatch(["compact", finished, "--db", db_url], cwd=tmp_path)
        assert busy.returncode == 2 and "another-host:1:compactor" in busy.stderr
        assert "phase_started" in _types(store, finished)  # untouched
    finally:
        store.close()


def test_the_policy_compacts_batches_finished_long_enough_ago_one_process_at_a_time(
    db_url: str,
) -> None:
    clock = Clock()
    store = open_store(db_url, clock=clock)
    try:
        old = _finished_batch(store)
        clock.now += 3600
        recent = _finished_batch(store)
        first = Compactor(store, compact_after=1800, owner="a")
        second = Compactor(store, compact_after=1800, owner="b")
        assert store.acquire_lease(LEASE, "b", 600) is not None  # b is in a pass
        assert first.run_once() is None
        store.release_lease(LEASE, "b")
        report = first.run_once()
        assert report is not None and report.batches == (old,)
        assert "phase_started" in _types(store, recent)
        lease = store.lease(LEASE)
        assert lease is not None and not lease.held(clock.now)  # released after the pass
        clock.now += 1800
        later = second.run_once()
        assert later is not None and later.batches == (recent,)
    finally:
        store.close()
