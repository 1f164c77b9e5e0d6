"""Fenced job claims: one holder per attempt, a new epoch on takeover, stale writes refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, update

from progress import Store, open_store
from progress import schema as t
from progress.batch_writes import NewJob
from progress.errors import LeaseLost, NotLeader
from progress.schedule_model import Fence
from tests.support.schedules import Clock

PHASES = ["resolve", "crawl"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[Store]:
    opened = open_store(db_url, clock=clock, poll_interval=0.05)
    try:
        yield opened
    finally:
        opened.close()


def _batch(store: Store, n: int = 1) -> tuple[str, list[str]]:
    jobs = [NewJob(row=i + 2, inputs={"Website": f"site{i}.test"}) for i in range(n)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="company", phases=PHASES, jobs=jobs)
    return batch_id, [j.job_id for j in jobs]


def test_a_duplicate_nudge_finds_nothing_to_claim(store: Store) -> None:
    _, (job_id,) = _batch(store)
    claim = store.claim_job(job_id, "w1", 10)
    assert claim is not None and claim.epoch == 1 and claim.job["status"] == "running"
    assert store.claim_job(job_id, "w2", 10) is None  # the lease is live
    assert store.claim_job("j-nonexistent", "w2", 10) is None
    store.succeed_job(job_id, {}, owner="w1", epoch=1)
    assert store.claim_job(job_id, "w2", 10) is None  # ended: a stale nudge


def test_a_takeover_bumps_the_epoch_and_the_old_attempt_cannot_write(
    store: Store, clock: Clock
) -> None:
    batch_id, (job_id,) = _batch(store)
    old = store.claim_job(job_id, "w1", 10)
    assert old is not None
    store.phase_started(job_id, 1, 2, "resolve", owner="w1", epoch=old.epoch)
    clock.now += 11
    new = store.claim_job(job_id, "w2", 10)
    assert new is not None and new.epoch == old.epoch + 1
    head = store.last_event_id()
    # The paused worker wakes up: nothing it writes lands, its heartbeat renews nothing.
    assert store.renew_claims("w1", {job_id: old.epoch}, 10) == set()
    with pytest.raises(LeaseLost):
        store.phase_finished(job_id, seconds=1.0, owner="w1", epoch=old.epoch)
    with pytest.raises(LeaseLost):
        store.succeed_job(job_id, {"Name": "stale"}, owner="w1", epoch=old.epoch)
    assert (
        store.advance(
            job_id, seconds=1.0, next_phase=(2, 2, "crawl"), owner="w1", epoch=old.epoch, wait=False
        )
        is None
    )
    store.phase_progress(job_id, 0.5, owner="w1", epoch=old.epoch, wait=False)
    # The same owner id at a stale epoch (a redelivery to the same process) is refused too.
    with pytest.raises(LeaseLost):
        store.fail_job(job_id, phase=None, reason="x", owner="w2", epoch=old.epoch)
    # That waited write committed after the queued ones: they were refused, not pending.
    assert store.last_event_id() == head
    assert store.renew_claims("w2", {job_id: new.epoch}, 10) == {job_id}
    store.succeed_job(job_id, {"Name": "fresh"}, owner="w2", epoch=new.epoch)
    types = [e["type"] for e in store.events_after(0, batch_id=batch_id)]
    assert types.count("job_started") == 2 and types.count("job_requeued") == 1
    assert store.job(job_id)["results"]["outputs"] == {"Name": "fresh"}
    assert store.batch(batch_id)["status"] == "completed"


def test_a_job_out_of_attempts_is_abandoned_and_a_cancelled_one_not_restarted(
    store: Store, clock: Clock
) -> None:
    batch_id, (first, second) = _batch(store, 2)
    for owner in ("w1", "w2", "w3"):
        assert store.claim_job(first, owner, 10, max_attempts=3) is not None
        clock.now += 11
    assert store.claim_job(first, "w4", 10, max_attempts=3) is None
    assert store.job(first)["status"] == "failed"
    assert store.job(first)["error"] == "abandoned"
    assert store.claim_job(second, "w1", 10) is not None
    store.cancel_batch(batch_id)
    clock.now += 11
    assert store.claim_job(second, "w2", 10) is None
    assert store.job(second)["status"] == "cancelled"
    assert store.batch(batch_id)["status"] == "cancelled"


def test_the_reconciler_requeue_is_fenced_and_frees_dead_workers_rows(
    store: Store, clock: Clock
) -> None:
    batch_id, (job_id,) = _batch(store)
    store.set_executor(batch_id, "celery")
    assert store.due_nudges(30) == [job_id]
    store.mark_dispatched([job_id])
    assert store.due_nudges(30) == []
    epoch = store.acquire_lease("reconciler", "r1", 10) or 0
    assert store.claim_job(job_id, "w1", 10) is not None
    assert (
        store.fenced_requeue(Fence("reconciler", "r1", epoch), [batch_id], set(), max_attempts=3)
        == []
    )
    outcome = store.fenced_requeue(
        Fence("reconciler", "r1", epoch), [batch_id], {"w1"}, max_attempts=3
    )
    assert outcome == [(job_id, "requeued")]
    assert store.due_nudges(30) == [job_id]  # a requeued job is nudged again at once
    clock.now += 11
    assert store.acquire_lease("reconciler", "r2", 10) == epoch + 1
    with pytest.raises(NotLeader):
        store.fenced_requeue(Fence("reconciler", "r1", epoch), [batch_id], {"w1"}, max_attempts=3)


def test_a_schema_3_store_gains_the_fencing_columns(db_url: str) -> None:
    store = open_store(db_url)
    _, (job_id,) = _batch(store)
    with store.engine.begin() as conn:
        for table, column in (
            ("sb_jobs", "lease_epoch"),
            ("sb_jobs", "dispatched"),
            ("sb_batches", "executor"),
        ):
            conn.exec_driver_sql(f'ALTER TABLE {table} DROP COLUMN "{column}"')
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="3"))
    store.close()
    upgraded = open_store(db_url)
    try:
        with upgraded.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("sb_jobs")}
        assert {"lease_epoch", "dispatched"} <= columns
        claim = upgraded.claim_job(job_id, "w1", 10)
        assert claim is not None and claim.epoch == 1
    finally:
        upgraded.close()


@pytest.mark.postgres
def test_marking_nudges_never_waits_for_a_worker_that_is_claiming_a_row(pg_db: str) -> None:
    """The dispatcher marks rows whose nudges are out while workers already claim them; it
    used to wait for their row locks inside its own transaction and deadlock with a group
    of claims. A row another transaction holds is skipped, the others are marked."""
    store = open_store(pg_db, poll_interval=0.05)
    try:
        batch_id, (held, free) = _batch(store, 2)
        store.set_executor(batch_id, "celery")
        worker = store._write_engine.connect()  # a worker's claim, not yet committed
        try:
            worker.begin()
            worker.execute(update(t.jobs).where(t.jobs.c.job_id == held).values(lease_owner="w1"))
            marking = threading.Thread(target=store.mark_dispatched, args=([held, free],))
            marking.start()
            marking.join(30)
            assert not marking.is_alive(), "mark_dispatched waited for the worker's lock"
        finally:
            worker.rollback()
            worker.close()
        assert store.due_nudges(30) == [held]  # the held row is nudged again if still queued
    finally:
        store.close()
