"""The progress store, run against SQLite and PostgreSQL alike (the `store` fixture)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from progress import (
    IllegalTransition,
    JobStatus,
    SchemaVersionError,
    Store,
    UnknownBatch,
    UnknownJob,
    open_store,
)
from progress import schema as t
from progress.batch_writes import NewJob
from progress.errors import LeaseLost
from progress.migrate import MIGRATIONS, ensure_schema

PHASES = ["resolve", "crawl", "extract", "score"]


def make_batch(store: Store, n: int = 3, **kw: Any) -> str:
    jobs = [
        NewJob(row=i + 2, inputs={"Website": f"site{i}.test"}, label=f"Co {i}") for i in range(n)
    ]
    return store.create_batch(sheet="s.csv", pipeline="company", phases=PHASES, jobs=jobs, **kw)


def run_job_through(store: Store, batch_id: str, owner: str = "w1") -> str:
    job = store.claim_next(batch_id, owner, 30)
    assert job is not None
    for i, name in enumerate(PHASES, start=1):
        store.phase_started(job["job_id"], i, 4, name, owner=owner)
        store.phase_progress(job["job_id"], 0.5, "half", owner=owner)
        store.phase_finished(job["job_id"], seconds=0.01, owner=owner)
    store.succeed_job(job["job_id"], {"Name": "X"}, owner=owner)
    return str(job["job_id"])


def test_a_new_batch_has_every_job_queued_and_is_readable_at_once(store: Store) -> None:
    batch_id = make_batch(store, 3)
    snap = store.batch(batch_id)
    assert snap["status"] == "running"
    assert snap["total"] == 3
    assert snap["counts"] == {
        "queued": 3,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert snap["percent"] == 0.0
    jobs = store.jobs(batch_id=batch_id)
    assert [j["row"] for j in jobs] == [2, 3, 4]
    assert all(j["status"] == "queued" for j in jobs)
    assert len({j["job_id"] for j in jobs}) == 3
    types = [e["type"] for e in store.events_after(0, batch_id=batch_id)]
    assert types == ["batch_created", "job_queued", "job_queued", "job_queued"]


def test_every_transition_is_persisted_when_it_happens(store: Store, db_url: str) -> None:
    batch_id = make_batch(store, 2)
    job = store.claim_next(batch_id, "w1", 30)
    assert job is not None
    store.phase_started(job["job_id"], 2, 4, "crawl", owner="w1")
    # A second, independent connection sees the state mid-run (seed 003: not "0/x until done").
    other = open_store(db_url)
    try:
        seen = other.job(job["job_id"])
        assert seen["status"] == "running"
        assert seen["phase"] == {"index": 2, "count": 4, "name": "crawl"}
        assert other.batch(batch_id)["counts"]["running"] == 1
    finally:
        other.close()


def test_the_state_machine_refuses_illegal_transitions(store: Store) -> None:
    batch_id = make_batch(store, 1)
    job_id = store.jobs(batch_id=batch_id)[0]["job_id"]
    with pytest.raises(IllegalTransition):
        store.succeed_job(job_id, {})  # queued -> succeeded skips running
    with pytest.raises(IllegalTransition):
        store.phase_started(job_id, 1, 4, "resolve")  # phases only while running
    done = run_job_through(store, batch_id)
    assert done == job_id
    with pytest.raises(IllegalTransition):
        store.fail_job(job_id, phase="x", reason="late")  # succeeded is final
    with pytest.raises(IllegalTransition):
        store.start_job(job_id, "w", 30)  # nor can it run again without a retry


def test_unknown_ids_are_errors_not_pending(store: Store) -> None:
    with pytest.raises(UnknownJob):
        store.job("j-nope")
    with pytest.raises(UnknownBatch):
        store.batch("b-nope")
    assert store.find_job("j-nope") is None


def test_a_batch_completes_with_counts_when_every_job_is_terminal(store: Store) -> None:
    batch_id = make_batch(store, 3)
    run_job_through(store, batch_id)
    failing = store.claim_next(batch_id, "w1", 30)
    assert failing is not None
    store.phase_started(failing["job_id"], 1, 4, "resolve", owner="w1")
    store.fail_job(failing["job_id"], phase="resolve", reason="connection refused", owner="w1")
    assert store.batch(batch_id)["status"] == "running"
    run_job_through(store, batch_id)
    snap = store.batch(batch_id)
    assert snap["status"] == "completed"
    assert snap["counts"]["succeeded"] == 2 and snap["counts"]["failed"] == 1
    assert snap["percent"] == 100.0 and snap["eta_seconds"] == 0.0
    failed = store.job(failing["job_id"])
    assert failed["error"] == "resolve: connection refused"
    assert failed["progress"] < 1.0  # a failed job is never reported as done
    last = store.events_after(0, batch_id=batch_id)[-1]
    assert last["type"] == "batch_finished"
    assert last["data"]["counts"] == {"succeeded": 2, "failed": 1, "cancelled": 0}


def test_retry_requeues_failed_jobs_and_reopens_the_batch(store: Store) -> None:
    batch_id = make_batch(store, 1)
    job = store.claim_next(batch_id, "w1", 30)
    assert job is not None
    store.fail_job(job["job_id"], phase="resolve", reason="boom", owner="w1")
    assert store.batch(batch_id)["status"] == "completed"
    assert store.retry_batch(batch_id) == [job["job_id"]]
    snap = store.batch(batch_id)
    assert snap["status"] == "running" and snap["counts"]["queued"] == 1
    again = store.job(job["job_id"])
    assert again["status"] == "queued" and again["error"] is None
    run_job_through(store, batch_id)
    assert store.batch(batch_id)["status"] == "completed"
    assert store.job(job["job_id"])["attempts"] == 2


def test_cancel_stops_queued_jobs_at_once_and_running_ones_finish_as_cancelled(
    store: Store,
) -> None:
    batch_id = make_batch(store, 3)
    running = store.claim_next(batch_id, "w1", 30)
    assert running is not None
    assert store.cancel_batch(batch_id) == 2
    assert store.cancel_requested(batch_id)
    assert store.batch(batch_id)["status"] == "running"  # one job still running
    store.cancel_job(running["job_id"], "batch cancelled", owner="w1")
    snap = store.batch(batch_id)
    assert snap["status"] == "cancelled"
    assert snap["counts"]["cancelled"] == 3


def test_events_are_keyed_by_job_and_filterable(store: Store) -> None:
    a = make_batch(store, 2)
    b = make_batch(store, 2)
    job_a = run_job_through(store, a)
    run_job_through(store, b)
    only_a = store.events_after(0, batch_id=a)
    assert {e["batch_id"] for e in only_a} == {a}
    only_job = store.events_after(0, job_id=job_a)
    assert {e["job_id"] for e in only_job} == {job_a}
    assert [e["type"] for e in only_job][-1] == "job_succeeded"
    phases = [e["data"] for e in only_job if e["type"] == "phase_started"]
    assert [(p["index"], p["count"], p["name"]) for p in phases] == [
        (1, 4, "resolve"),
        (2, 4, "crawl"),
        (3, 4, "extract"),
        (4, 4, "score"),
    ]
    ids = [e["id"] for e in store.events_after(0)]
    assert ids == list(range(1, len(ids) + 1))
    # The light form readers use when only the jobs that moved matter (the sheet writer).
    refs = store.event_refs_after(only_a[1]["id"], batch_id=a, limit=3)
    assert refs == [(e["id"], e["job_id"]) for e in only_a[2:5]]


def test_concurrent_writers_never_let_a_cursor_reader_miss_an_event(store: Store) -> None:
    """Ids are handed out in commit order: a follower reading at a cursor sees every event."""
    batch_id = make_batch(store, 40)
    seen: list[int] = []
    stop = threading.Event()

    def follower() -> None:
        cursor = 0
        while not stop.is_set() or cursor < store.last_event_id():
            for event in store.events_after(cursor, limit=500):
                seen.append(event["id"])
                cursor = event["id"]
            store.wait(cursor, 0.05)

    def worker(n: int) -> None:
        while store.claim_next(batch_id, f"w{n}", 30) is not None:
            pass

    reader = threading.Thread(target=follower)
    reader.start()
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    reader.join(timeout=30)
    assert seen == list(range(1, store.last_event_id() + 1))
    assert store.batch(batch_id)["counts"]["running"] == 40


def test_wait_wakes_on_append_and_times_out_without_one(store: Store) -> None:
    head = store.last_event_id()
    assert store.wait(head, 0.2) == head  # nothing new: a timeout
    woke: list[int] = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait(head, 10)))
    waiter.start()
    time.sleep(0.1)
    make_batch(store, 1)
    waiter.join(timeout=10)
    assert woke and woke[0] > head


def test_follow_serves_live_followers_from_the_feed(store: Store) -> None:
    head = store.feed.head()  # the process's feed is running
    store.follow(head)  # a follower arrives: the feed starts keeping new events in memory
    batch_id = make_batch(store, 2)
    deadline = time.monotonic() + 5
    while store.feed.head() < store.last_event_id() and time.monotonic() < deadline:
        store.wait(store.feed.head(), 0.1)
    # What followers share: the feed's buffer answers them, not one database read each.
    statements: list[str] = []
    me = threading.get_ident()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The followers' own reads: the feed's listener thread reads on its own when a
        # late NOTIFY or its fallback poll comes during the follows (not the crowd's cost).
        if threading.get_ident() == me:
            statements.append(statement)

    sa_event.listen(store.engine, "before_cursor_execute", count)
    try:
        followed = [store.follow(head, batch_id=batch_id) for _ in range(20)]
    finally:
        sa_event.remove(store.engine, "before_cursor_execute", count)
    assert not [s for s in statements if "sb_events" in s]
    expected = store.events_after(head, batch_id=batch_id)
    assert len(expected) == 1 + 2  # batch_created and two job_queued
    assert all(f == expected for f in followed)


def test_followers_from_before_the_feed_buffer_cost_one_database_read(store: Store) -> None:
    # A crowd starting from one snapshot: its cursor is older than anything the feed
    # keeps (nobody followed while these events were written).
    cursor = store.last_event_id()
    batch_id = make_batch(store, 30)
    make_batch(store, 5)  # another batch's events in between: the filter still applies
    deadline = time.monotonic() + 5
    while store.feed.head() < store.last_event_id() and time.monotonic() < deadline:
        store.wait(store.feed.head(), 0.1)
    statements: list[str] = []
    me = threading.get_ident()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The followers' own reads: the feed's listener thread reads on its own when a
        # late NOTIFY or its fallback poll comes during the follows (not the crowd's cost).
        if threading.get_ident() == me:
            statements.append(statement)

    sa_event.listen(store.engine, "before_cursor_execute", count)
    try:
        followed = [store.follow(cursor, batch_id=batch_id) for _ in range(50)]
    finally:
        sa_event.remove(store.engine, "before_cursor_execute", count)
    assert len([s for s in statements if "sb_events" in s]) == 1  # the first fills the gap
    expected = store.events_after(cursor, batch_id=batch_id)
    assert len(expected) == 1 + 30
    assert all(f == expected for f in followed)


def test_expired_leases_are_requeued_then_abandoned(db_url: str) -> None:
    now = [1000.0]
    store = open_store(db_url, clock=lambda: now[0])
    try:
        batch_id = make_batch(store, 1)
        job = store.claim_next(batch_id, "dead-worker", 30)
        assert job is not None
        # It never sends a heartbeat: still leased for 30 s, then expired.
        assert store.requeue_expired(max_attempts=2) == []
        now[0] += 31
        assert store.requeue_expired(max_attempts=2) == [(job["job_id"], "requeued")]
        assert store.job(job["job_id"])["status"] == "queued"
        # The dead worker's late write is refused: the job is not its any more.
        again = store.claim_next(batch_id, "w2", 30)
        assert again is not None
        with pytest.raises(LeaseLost):
            store.phase_started(job["job_id"], 1, 4, "resolve", owner="dead-worker")
        # Heartbeats keep a live worker's lease.
        now[0] += 20
        assert store.heartbeat("w2", [job["job_id"]], 30) == 1
        now[0] += 20
        assert store.requeue_expired(max_attempts=2) == []
        now[0] += 31
        assert store.requeue_expired(max_attempts=2) == [(job["job_id"], "abandoned")]
        final = store.job(job["job_id"])
        assert final["status"] == "failed" and final["error"] == "abandoned"
        assert store.batch(batch_id)["status"] == "completed"
    finally:
        store.close()


def test_a_known_dead_owner_is_requeued_before_its_lease_expires(store: Store) -> None:
    batch_id = make_batch(store, 1)
    job = store.claim_next(batch_id, "host:1:dead", 300)
    assert job is not None
    out = store.requeue_expired(max_attempts=3, owner_alive=lambda o: False)
    assert out == [(job["job_id"], "requeued")]


def test_cursors_are_durable_and_never_move_back(store: Store) -> None:
    assert store.get_cursor("sheet:x") == 0
    store.set_cursor("sheet:x", 10)
    store.set_cursor("sheet:x", 5)
    assert store.get_cursor("sheet:x") == 10


def test_a_database_from_a_newer_version_is_refused(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.begin() as conn:
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="99"))
    store.close()
    with pytest.raises(SchemaVersionError, match=r"schema version 99.*upgrade sheetbatch"):
        open_store(db_url)


def test_an_older_database_is_upgraded_or_refused_with_a_clear_message(db_url: str) -> None:
    store = open_store(db_url)
    engine = store.engine
    with engine.begin() as conn:
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="0"))
    with pytest.raises(SchemaVersionError, match="no upgrade path"):
        ensure_schema(engine, sqlite=engine.dialect.name == "sqlite")
    applied: list[int] = []
    version = ensure_schema(
        engine,
        sqlite=engine.dialect.name == "sqlite",
        # The real steps from 1 on (2 added the schedules, 3 the dashboard's sessions).
        migrations={**MIGRATIONS, 0: lambda conn: applied.append(0)},
    )
    assert version == t.SCHEMA_VERSION and applied == [0]
    store.close()
    open_store(db_url).close()  # and now it opens normally


def test_job_snapshot_carries_what_readers_need(store: Store) -> None:
    batch_id = make_batch(store, 1)
    job = store.claim_next(batch_id, "w1", 30)
    assert job is not None
    store.phase_started(job["job_id"], 1, 4, "resolve", owner="w1")
    store.phase_progress(job["job_id"], 0.5, "fetching", owner="w1")
    snap = store.job(job["job_id"])
    for key in (
        "job_id",
        "batch_id",
        "row",
        "status",
        "phase",
        "fraction",
        "error",
        "results",
        "created",
        "started",
        "updated",
    ):
        assert key in snap
    assert snap["progress"] == pytest.approx(0.125)
    assert snap["message"] == "fetching"
    assert JobStatus(snap["status"]) is JobStatus.RUNNING


def test_a_failing_write_in_a_shared_commit_affects_no_other_write(store: Store) -> None:
    """Writes from many threads share transactions; one bad write must fail alone."""
    batch_id = make_batch(store, 13)  # 12 claimers take rows in order: the last stays queued
    queued = [j["job_id"] for j in store.jobs(batch_id=batch_id)]
    taken = queued[0]
    start = threading.Barrier(14)
    errors: dict[str, BaseException] = {}

    def claim(n: int) -> None:
        start.wait()
        store.claim_next(batch_id, f"w{n}", 30)

    def illegal() -> None:
        start.wait()
        try:
            store.succeed_job(queued[-1], {})  # still queued: refused
        except IllegalTransition as exc:
            errors["illegal"] = exc

    def duplicate() -> None:
        start.wait()
        try:  # a job id that exists already: the database refuses the whole write
            store.create_batch(
                sheet="s.csv",
                pipeline="p",
                phases=PHASES,
                jobs=[NewJob(row=2, inputs={}, job_id=taken)],
            )
        except Exception as exc:
            errors["duplicate"] = exc

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(12)]
    threads += [threading.Thread(target=illegal), threading.Thread(target=duplicate)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(errors) == {"illegal", "duplicate"}
    assert store.batch(batch_id)["counts"]["running"] == 12
    assert len(store.batches()) == 1  # the refused batch left nothing behind
    ids = [e["id"] for e in store.events_after(0, limit=10_000)]
    assert ids == list(range(1, len(ids) + 1))  # no gap where a write was undone


def test_job_id_pages_give_every_job_of_the_batch_once_in_row_order(store: Store) -> None:
    # Rows 3 and 4 twice each (a row's job withdrawn and the row given a new one): the
    # pages must not lose or repeat a job that shares its row with another.
    jobs = [NewJob(row=row, inputs={}, label=f"r{row}") for row in (2, 3, 3, 4, 4, 5, 6)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="company", phases=PHASES, jobs=jobs)
    make_batch(store, 2)  # another batch's jobs are not in them
    pages = list(store.job_id_pages(batch_id, size=2))
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    expected = [job.job_id for job in sorted(jobs, key=lambda job: (job.row, job.job_id))]
    assert [job_id for page in pages for job_id in page] == expected


def test_job_id_pages_can_hold_only_the_queued_jobs_never_attempted(store: Store) -> None:
    # What a run resuming a batch withdraws when the sheet lost their ids: queued jobs
    # that never started, a page at a time (a job retried after a start is not one).
    jobs = [NewJob(row=row, inputs={}, label=f"r{row}") for row in range(2, 9)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="company", phases=PHASES, jobs=jobs)
    started = store.claim_next(batch_id, "w1", 60)
    assert started is not None
    store.fail_job(started["job_id"], phase=None, reason="site down")
    store.retry_jobs(batch_id, [started["job_id"]])  # queued again, attempted once
    running = store.claim_next(batch_id, "w1", 60)
    assert running is not None
    store.cancel_job(jobs[-1].job_id, "withdrawn")
    pages = list(store.job_id_pages(batch_id, size=2, statuses=[JobStatus.QUEUED], unstarted=True))
    assert all(len(page) <= 2 for page in pages)
    left = {started["job_id"], running["job_id"], jobs[-1].job_id}
    assert [job_id for page in pages for job_id in page] == [
        job.job_id for job in jobs if job.job_id not in left
    ]


def test_every_event_of_a_job_moves_its_last_event_id(store: Store) -> None:
    # Readers that look for the jobs changed since a cursor in the jobs table (the sheet
    # writer's final flush) see a job move exactly when its log does: notes included.
    batch_id = make_batch(store, 3)
    done = run_job_through(store, batch_id)
    store.note(done, "row deleted from the sheet")
    failed = store.claim_next(batch_id, "w1", 30)
    assert failed is not None
    store.phase_started(failed["job_id"], 1, 4, "resolve", owner="w1")
    store.fail_job(failed["job_id"], phase="resolve", reason="boom", owner="w1")
    store.retry_jobs(batch_id, [failed["job_id"]])
    store.note(failed["job_id"], "retried by the operator")
    cancelled = store.claim_next(batch_id, "w1", 30)
    assert cancelled is not None
    store.phase_started(cancelled["job_id"], 1, 4, "resolve", owner="w1")
    store.cancel_batch(batch_id)
    store.advance(cancelled["job_id"], seconds=0.1, next_phase=(2, 4, "crawl"), owner="w1")
    store.note(cancelled["job_id"], "cancelled mid-run")
    for job in store.jobs(batch_id=batch_id):
        events = store.events_after(0, job_id=job["job_id"])
        assert job["last_event_id"] == events[-1]["id"], events[-1]["type"]


def test_every_sqlite_connection_keeps_a_small_page_cache(tmp_path: Any) -> None:
    # A run holds a connection per worker thread, each with a page cache of its own: at
    # SQLite's default 2 MB each they filled up as the file grew (RSS grew with the rows).
    with (
        open_store(f"sqlite:///{tmp_path / 'p.db'}") as store,
        store.engine.connect() as one,
        store.engine.connect() as two,
    ):
        sizes = [c.exec_driver_sql("PRAGMA cache_size").scalar_one() for c in (one, two)]
    assert sizes == [-512, -512]


@contextmanager
def _writers_locked_out(store: Store) -> Iterator[None]:
    """Another connection holds what every writing transaction waits for: the log head's
    row lock (PostgreSQL) or the database's write lock (SQLite)."""
    if store.engine.dialect.name == "sqlite":
        holder = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with store.engine.connect() as conn, conn.begin() as tx:
        conn.execute(select(t.log_head.c.last_id).where(t.log_head.c.id == 1).with_for_update())
        yield
        tx.rollback()


def test_a_queued_write_never_holds_up_its_thread(store: Store) -> None:
    """A phase start is queued so a worker goes back to its row at once: it must not sit
    through a commit, even when it finds nobody committing and the store busy."""
    batch_id = make_batch(store, 1)
    job = store.claim_next(batch_id, "w1", 30)
    assert job is not None
    head = store.last_event_id()
    returned = threading.Event()

    def queue_a_phase_start() -> None:
        store.phase_started(job["job_id"], 1, 4, "resolve", owner="w1", wait=False)
        returned.set()

    with _writers_locked_out(store):
        thread = threading.Thread(target=queue_a_phase_start)
        thread.start()
        assert returned.wait(10), "the queued write waited for the store's write lock"
        assert store.last_event_id() == head  # not committed: the writers are locked out
    thread.join()
    # A waited write of the same job commits after the queued one, in order.
    store.phase_finished(job["job_id"], seconds=0.1, owner="w1")
    types = [e["type"] for e in store.events_after(head, batch_id=batch_id)]
    assert types == ["phase_started", "phase_finished"]


def test_closing_the_store_commits_the_queued_writes(db_url: str) -> None:
    store = open_store(db_url)
    batch_id = make_batch(store, 1)
    job = store.claim_next(batch_id, "w1", 30)
    assert job is not None
    for index, name in enumerate(PHASES, start=1):
        store.phase_started(job["job_id"], index, 4, name, owner="w1", wait=False)
    store.close()
    with open_store(db_url) as again:
        types = [e["type"] for e in again.events_after(0, batch_id=batch_id)]
    assert types.count("phase_started") == 4


def test_a_sqlite_store_opened_while_another_process_writes_reads_at_once(
    sqlite_db: str,
) -> None:
    """A dashboard or `sheetbatch status` opened beside a running batch: its connections
    must not wait for the batch's transactions (a pragma on connect used to)."""
    with open_store(sqlite_db) as store:
        batch_id = make_batch(store, 2)
        with _writers_locked_out(store), open_store(sqlite_db, create=False) as reader:
            assert reader.batch(batch_id)["counts"]["queued"] == 2
