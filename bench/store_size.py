"""Store bytes per finished row, before and after compaction, on SQLite and PostgreSQL.

Fills a fresh store with `--rows` finished jobs through the real store API (the calls a
4-phase pipeline's runner makes: claim, phase start, three boundaries, success with results,
from `--threads` worker threads so writes group-commit as in a run), measures the store's
size (`Store.size_bytes`: SQLite's file and WAL, after a checkpoint; PostgreSQL's tables
with their indexes and TOAST), compacts it (`Store.compact`), measures again, then runs a
second batch of the same size and compacts it too. `bytes_per_row_two_compacted_batches`
shows whether the space the first compaction freed is used again (PostgreSQL: the progress
reports' partition of the log is emptied and VACUUM truncates it; the other tables' freed
space is reused, their files do not shrink; the indexes are rebuilt, so theirs do);
`bytes_per_row_packed` is what both batches need
once rewritten (VACUUM / VACUUM FULL). Issue 14's target: <= 1.5 KB per finished row.
PostgreSQL runs in a database of its own (created and dropped here), so other users of the
server's databases cannot hold back what VACUUM frees.
Prints one JSON line.

    .venv/bin/python bench/store_size.py --rows 20000 [--pg postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from progress import open_store
from progress.batch_writes import NewJob
from progress.store import Store

PHASES = ["resolve", "crawl", "extract", "score"]
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _run_jobs(store: Store, batch_id: str, owner: str) -> None:
    while (job := store.claim_next(batch_id, owner, 60)) is not None:
        job_id, i = job["job_id"], job["row"]
        store.phase_started(job_id, 1, 4, PHASES[0], owner=owner, wait=False)
        for index in range(1, 4):
            store.advance(
                job_id,
                seconds=0.0012,
                results={"final_url": f"https://company{i}.example"},
                owner=owner,
                next_phase=(index + 1, 4, PHASES[index]),
                wait=False,
            )
        outputs = {
            "Name": f"Company {i}",
            "Score": "92",
            "Final URL": f"https://company{i}.example",
        }
        store.succeed_job(
            job_id,
            outputs,
            owner=owner,
            phase_seconds=0.0009,
            results={"name": f"Company {i}", "final_url": outputs["Final URL"], "score": 92},
        )


def fill(store: Store, rows: int, threads: int) -> str:
    """A finished batch of `rows` jobs, each through the four phases."""
    jobs = [
        NewJob(
            row=i + 2,
            label=f"Company {i}",
            inputs={
                "Company": f"Company {i}",
                "Website": f"https://company{i}.example",
                "City": "Berlin",
                "Owner": f"owner{i % 97}",
                "Notes": "lead",
            },
        )
        for i in range(rows)
    ]
    batch_id = store.create_batch(sheet="bench.csv", pipeline="fast", phases=PHASES, jobs=jobs)
    workers = [
        threading.Thread(target=_run_jobs, args=(store, batch_id, f"bench-{n}"))
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.batch(batch_id)["status"] == "completed"
    return batch_id


@contextmanager
def _pg_database(base: str) -> Iterator[str]:
    """A database of its own: VACUUM removes a deleted row only once no transaction of the
    same database may still see it, so a long transaction of another user of a shared
    database (a test run's) would keep every dead row, and the figures measure that user."""
    import psycopg

    name = "bench_" + secrets.token_hex(4)
    with psycopg.connect(base.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield base.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _checkpoint(store: Store) -> None:
    """SQLite: move the WAL into the database file, so the size is the data's, not the
    WAL's high-water mark (PostgreSQL: nothing to do)."""
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _packed_size(store: Store) -> int:
    """The store's size after a full rewrite (SQLite VACUUM, PostgreSQL VACUUM FULL)."""
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if conn.dialect.name == "sqlite":
            conn.connection.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql("VACUUM FULL")
    _checkpoint(store)
    return store.size_bytes()


def measure(url: str, rows: int, threads: int) -> dict[str, Any]:
    store = open_store(url)
    try:
        started = time.perf_counter()
        first = fill(store, rows, threads)
        fill_s = time.perf_counter() - started
        _checkpoint(store)
        before = store.size_bytes()
        started = time.perf_counter()
        done = store.compact([first])
        compact_s = time.perf_counter() - started
        after = store.size_bytes()
        second = fill(store, rows, threads)
        store.compact([second])
        both = store.size_bytes()
        packed = _packed_size(store)
        return {
            "rows": rows,
            "fill_rows_per_s": round(rows / fill_s),
            "bytes_per_row_before": round(before / rows),
            "bytes_per_row_after": round(after / rows),
            "bytes_per_row_two_compacted_batches": round(both / (2 * rows)),
            # What the two compacted batches need once rewritten (VACUUM / VACUUM FULL).
            "bytes_per_row_packed": round(packed / (2 * rows)),
            "events_removed_per_row": round(done.events_removed / rows, 2),
            "compact_s": round(compact_s, 2),
        }
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL ('' to skip)")
    args = parser.parse_args()
    figures: dict[str, Any] = {"bench": "store_size", "target_bytes_per_row": 1536}
    with tempfile.TemporaryDirectory() as tmp:
        figures["sqlite"] = measure(f"sqlite:///{tmp}/store.db", args.rows, args.threads)
    if args.pg:
        try:
            with _pg_database(args.pg) as url:
                figures["postgresql"] = measure(url, args.rows, args.threads)
        except Exception as exc:  # a loop boundary of sorts: report, do not hide
            figures["postgresql"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
