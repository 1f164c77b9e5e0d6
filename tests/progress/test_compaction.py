"""Compaction: a finished batch's progress reports leave the log, every transition stays,
and a stream resumed from before the compaction starts from a snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from progress import Store, open_store
from progress.batch_writes import NewJob
from progress.compaction import PROGRESS_EVENTS
from progress.errors import BatchStillRunning, UnknownBatch
from progress.schedule_model import NewSchedule, PlannedTick, TickReason, TickState
from progress.sse import Scope, plan_stream
from tests.progress.test_leases import Clock

PHASES = ["resolve", "crawl"]


def _run(store: Store, batch_id: str, *, fail_row: int | None = None) -> None:
    """Every queued job of the batch through both phases, with progress reports."""
    while (job := store.claim_next(batch_id, "w", 30)) is not None:
        job_id = job["job_id"]
        store.phase_started(job_id, 1, 2, PHASES[0], owner="w")
        store.phase_progress(job_id, 0.5, "half way", owner="w")
        if job["row"] == fail_row:
            store.fail_job(job_id, phase=PHASES[0], reason="connection refused", owner="w")
            continue
        store.advance(job_id, seconds=0.25, owner="w", next_phase=(2, 2, PHASES[1]))
        store.succeed_job(job_id, {"Name": f"n{job['row']}"}, owner="w", phase_seconds=0.5)


def _history(store: Store, batch_id: str) -> dict[str | None, list[tuple[str, str]]]:
    """Each job's (event type, status) sequence, as the log replays it."""
    out: dict[str | None, list[tuple[str, str]]] = {}
    for event in store.events_after(0, batch_id=batch_id, limit=100_000):
        out.setdefault(event["job_id"], []).append((event["type"], event["data"].get("status")))
    return out


def _transitions(history: dict[str | None, list[tuple[str, str]]]) -> dict[Any, list[Any]]:
    return {
        job: [step for step in steps if step[0] not in PROGRESS_EVENTS]
        for job, steps in history.items()
    }


@pytest.fixture
def finished(store: Store) -> str:
    """A finished batch: two jobs succeeded, one failed, retried, then succeeded."""
    jobs = [NewJob(row=r, inputs={"Website": f"s{r}.test"}, label=f"c{r}") for r in (2, 3, 4)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="p", phases=PHASES, jobs=jobs)
    _run(store, batch_id, fail_row=3)
    store.retry_batch(batch_id)
    _run(store, batch_id)
    assert store.batch(batch_id)["status"] == "completed"
    return batch_id


def test_compaction_removes_progress_reports_and_keeps_every_transition(
    store: Store, finished: str
) -> None:
    before = _history(store, finished)
    jobs_before = store.jobs(batch_id=finished)
    reports = sum(1 for steps in before.values() for kind, _ in steps if kind in PROGRESS_EVENTS)
    assert reports == 3 * 5 + 2  # 3 jobs x (2 starts, 1 progress, 2 ends); the failed try: 2

    done = store.compact([finished])

    assert done.batches == (finished,)
    assert done.events_removed == reports
    after = _history(store, finished)
    assert after == _transitions(before)
    retried = next(job for job in jobs_before if job["attempts"] == 2)["job_id"]
    assert [status for _, status in after[retried]] == [
        "queued", "running", "failed", "queued", "running", "succeeded"
    ]  # fmt: skip
    # The projections are untouched: outcomes, errors, per-phase seconds.
    assert store.jobs(batch_id=finished) == jobs_before
    assert store.batch(finished)["counts"]["succeeded"] == 3


def test_a_running_batch_is_never_compacted(store: Store, finished: str) -> None:
    running = store.create_batch(
        sheet="r.csv", pipeline="p", phases=PHASES, jobs=[NewJob(row=2, inputs={})]
    )
    job = store.claim_next(running, "w", 30)
    assert job is not None
    store.phase_started(job["job_id"], 1, 2, PHASES[0], owner="w")
    with pytest.raises(BatchStillRunning, match=running):
        store.compact([running])
    with pytest.raises(UnknownBatch):
        store.compact(["b-missing"])
    done = store.compact()  # every finished batch: not the running one
    assert done.batches == (finished,)
    types = [e["type"] for e in store.events_after(0, batch_id=running)]
    assert "phase_started" in types


def test_a_batch_running_through_a_compaction_keeps_its_whole_history(
    store: Store, finished: str
) -> None:
    # On PostgreSQL the compaction rebuilds the log's and the jobs' indexes under the
    # running batch; its claims, job reads and per-job replays go through them after.
    jobs = [NewJob(row=r, inputs={}) for r in (2, 3)]
    running = store.create_batch(sheet="r.csv", pipeline="p", phases=PHASES, jobs=jobs)
    first = store.claim_next(running, "w", 30)
    assert first is not None
    store.phase_started(first["job_id"], 1, 2, PHASES[0], owner="w")
    compacted_history = _transitions(_history(store, finished))

    assert store.compact().batches == (finished,)

    store.advance(first["job_id"], seconds=0.1, owner="w", next_phase=(2, 2, PHASES[1]))
    store.succeed_job(first["job_id"], {"Name": "n2"}, owner="w", phase_seconds=0.1)
    _run(store, running)
    assert store.batch(running)["status"] == "completed"
    assert _history(store, finished) == compacted_history
    progress = {2: [], 3: ["phase_progress"]}  # row 3 ran through `_run`
    for job in store.jobs(batch_id=running):
        kinds = [e["type"] for e in store.events_after(0, job_id=job["job_id"])]
        assert kinds == [
            "job_queued", "job_started", "phase_started", *progress[job["row"]],
            "phase_finished", "phase_started", "phase_finished", "job_succeeded",
        ], job["row"]  # fmt: skip
    for job in store.jobs(batch_id=finished):
        kinds = [e["type"] for e in store.events_after(0, job_id=job["job_id"])]
        assert kinds[-1] == "job_succeeded" and not set(kinds) & set(PROGRESS_EVENTS)


def test_a_batch_is_compacted_again_only_after_new_events(store: Store) -> None:
    jobs = [NewJob(row=r, inputs={}) for r in (2, 3)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="p", phases=PHASES, jobs=jobs)
    _run(store, batch_id, fail_row=3)
    first = store.compact()
    assert first.batches == (batch_id,) and first.events_removed == 5 + 2
    assert store.compact() == type(first)((), 0)
    assert store.compactable() == []
    store.retry_batch(batch_id)  # the batch reopens, its failed row runs again
    _run(store, batch_id)
    assert store.compactable() == [batch_id]
    again = store.compact()
    assert again.events_removed == 5  # only the new run's reports
    assert store.compaction_mark(batch_id=batch_id) == store.batch(batch_id)["last_event_id"]


def test_only_batches_finished_before_the_cutoff_are_compacted(db_url: str) -> None:
    clock = Clock()
    store = open_store(db_url, clock=clock)
    try:
        old = store.create_batch(sheet="a.csv", pipeline="p", phases=PHASES, jobs=[NewJob(2, {})])
        _run(store, old)
        clock.now += 86_400
        new = store.create_batch(sheet="b.csv", pipeline="p", phases=PHASES, jobs=[NewJob(2, {})])
        _run(store, new)
        assert store.compact(finished_before=clock.now - 3600).batches == (old,)
        assert store.compactable() == [new]
    finally:
        store.close()


def test_a_cursor_older_than_the_compaction_gets_a_fresh_snapshot(
    store: Store, finished: str
) -> None:
    job_id = store.jobs(batch_id=finished)[0]["job_id"]
    old_cursor = 3
    for scope in (Scope(batch_id=finished), Scope(job_id=job_id), Scope()):
        plan = plan_stream(store, scope, old_cursor)
        assert plan.snapshot is None and plan.cursor == old_cursor  # replayable so far
    store.compact([finished])
    mark = store.compaction_mark(batch_id=finished)
    assert mark == store.batch(finished)["last_event_id"]
    for scope in (Scope(batch_id=finished), Scope(job_id=job_id), Scope()):
        plan = plan_stream(store, scope, old_cursor)
        assert plan.snapshot is not None, scope
        assert plan.snapshot.cursor == store.last_event_id()
        resumed = plan_stream(store, scope, mark)
        assert resumed.snapshot is None and resumed.cursor == mark
    # Another batch's streams are not affected by this batch's compaction.
    other = store.create_batch(sheet="o.csv", pipeline="p", phases=PHASES, jobs=[NewJob(2, {})])
    assert plan_stream(store, Scope(batch_id=other), old_cursor).snapshot is None


def _schedule(store: Store) -> str:
    spec = NewSchedule(
        name="every-second",
        sheet="s.csv",
        pipeline="fast",
        trigger={"kind": "interval", "seconds": 1},
    )
    return store.create_schedule(spec).schedule_id


@pytest.fixture
def clocked(db_url: str) -> Iterator[tuple[Store, Clock]]:
    clock = Clock()
    store = open_store(db_url, clock=clock)
    try:
        yield store, clock
    finally:
        store.close()


def test_ticks_keep_the_newest_per_schedule_and_everything_recent(
    clocked: tuple[Store, Clock],
) -> None:
    store, clock = clocked
    sid = _schedule(store)
    start = clock.now
    due = [PlannedTick(start + i, TickState.RUNNING) for i in range(30)]
    made = store.record_ticks(sid, due, scheduler="a", guard=None)
    for tick in made[:-1]:  # the newest still runs
        store.finish_tick(tick.tick_id, TickState.SKIPPED, TickReason.OVERLAP, guard=None)
    unfinished = store.record_ticks(
        sid, [PlannedTick(start - 50, TickState.RUNNING)], scheduler="a", guard=None
    )
    # Keep 5 and everything due in the last 10 seconds of the 30.
    pruned = store.prune_ticks(keep=5, finished_before=start + 20)
    left = sorted(tick.scheduled_for - start for tick in store.ticks(sid, limit=1000))
    assert left == [-50, *range(20, 30)]  # recent ones (>= 5 of them) and the unfinished one
    assert pruned == 20
    assert unfinished[0].state is TickState.RUNNING
    # With a window shorter than `keep` ticks, the newest `keep` stay.
    store.prune_ticks(keep=5, finished_before=start + 1000)
    left = sorted(tick.scheduled_for - start for tick in store.ticks(sid, limit=1000))
    assert left == [-50, 25, 26, 27, 28, 29]


@pytest.mark.postgres
def test_an_index_left_by_an_interrupted_rebuild_is_dropped_by_the_next_compaction(
    pg_db: str,
) -> None:
    """An index rebuild cut off half-way leaves an invalid `*_ccnew` index that every write
    still maintains; the next compaction drops it and rebuilds the rest."""
    store = open_store(pg_db, poll_interval=0.05)
    try:
        jobs = [NewJob(row=r, inputs={}) for r in (2, 3)]
        batch_id = store.create_batch(sheet="s.csv", pipeline="p", phases=PHASES, jobs=jobs)
        _run(store, batch_id)
        with store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            # A concurrent build that fails (duplicate keys) stays behind invalid, as an
            # interrupted REINDEX CONCURRENTLY's new index does (on a partition of the log:
            # the partitioned table's indexes are its partitions').
            with pytest.raises(Exception, match="could not create unique index"):
                conn.exec_driver_sql(
                    "CREATE UNIQUE INDEX CONCURRENTLY sb_events_batch_ccnew "
                    "ON sb_events_states (batch_id)"
                )

        def invalid() -> list[str]:
            with store.engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " JOIN pg_inherits p ON p.inhrelid = i.indrelid"
                    " WHERE p.inhparent = 'sb_events'::regclass AND NOT i.indisvalid"
                ).all()
            return [name for (name,) in rows]

        assert invalid() == ["sb_events_batch_ccnew"]
        assert store.compact([batch_id]).batches == (batch_id,)
        assert invalid() == []
        assert _transitions(_history(store, batch_id))  # the log still replays
    finally:
        store.close()
