"""Schema 8 (the small finished row): a schema-7 store is upgraded with every batch, job and
event reading as before, its streams still replay, and it compacts."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import inspect, select, update

from progress import Store, open_store
from progress import schema as t
from progress.batch_writes import NewJob
from progress.sse import Scope, plan_stream

# sb_events as schema 7 created it: one table, the id its key, (job, id) indexed.
_V7_EVENTS = (
    "CREATE TABLE sb_events_old (id {id} NOT NULL, type VARCHAR(40) NOT NULL, "
    "batch_id VARCHAR(64) NOT NULL, job_id VARCHAR(64), time FLOAT NOT NULL, "
    "data JSON NOT NULL, PRIMARY KEY (id))"
)
_VERSION = select(t.meta.c.value).where(t.meta.c.key == "schema_version")
_V7_COLUMNS = "id, type, batch_id, job_id, time, data"
_V7_INDEXES = (
    "CREATE INDEX ix_sb_events_batch ON sb_events (batch_id, id)",
    "CREATE INDEX ix_sb_events_job ON sb_events (job_id, id)",
    "CREATE INDEX ix_sb_jobs_batch_status ON sb_jobs (batch_id, status, row)",
    "CREATE INDEX ix_sb_jobs_lease ON sb_jobs (status, lease_expires)",
)


def _fill(store: Store) -> str:
    """A finished batch: a job succeeded, one failed; and a running batch with a queued job."""
    jobs = [NewJob(row=r, inputs={"Website": f"s{r}.test"}, label=f"c{r}") for r in (2, 3)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="p", phases=["a", "b"], jobs=jobs)
    for outcome in ("succeed", "fail"):
        job = store.claim_next(batch_id, "w", 30)
        assert job is not None
        store.phase_started(job["job_id"], 1, 2, "a", owner="w")
        store.phase_progress(job["job_id"], 0.5, "half way", owner="w")
        if outcome == "fail":
            store.fail_job(job["job_id"], phase="a", reason="connection refused", owner="w")
            continue
        store.advance(job["job_id"], seconds=0.25, owner="w", next_phase=(2, 2, "b"))
        store.succeed_job(
            job["job_id"],
            {"Name": "Acme", "Score": "90"},
            owner="w",
            phase_seconds=0.5,
            results={"name": "Acme", "score": 90},
        )
    store.create_batch(sheet="t.csv", pipeline="p", phases=["a"], jobs=[NewJob(row=2, inputs={})])
    return batch_id


def _as_schema_7(store: Store) -> None:
    """Give the store schema 7's layout and data: its events table and indexes, and a
    `job_succeeded` event carrying the job's outputs, as schema 7 wrote it."""
    with store.engine.begin() as conn:
        sqlite = conn.dialect.name == "sqlite"
        conn.exec_driver_sql(_V7_EVENTS.format(id="INTEGER" if sqlite else "BIGINT"))
        conn.exec_driver_sql(
            f"INSERT INTO sb_events_old ({_V7_COLUMNS}) SELECT {_V7_COLUMNS} FROM sb_events"
        )
        conn.exec_driver_sql("DROP TABLE sb_events")
        conn.exec_driver_sql("ALTER TABLE sb_events_old RENAME TO sb_events")
        for name in (
            "ix_sb_jobs_queued",
            "ix_sb_jobs_running",
            "ix_sb_jobs_failed",
            "ix_sb_jobs_cancelled",
        ):
            conn.exec_driver_sql(f"DROP INDEX {name}")
        for ddl in _V7_INDEXES:
            conn.exec_driver_sql(ddl)
        succeeded = conn.execute(
            select(t.events.c.id, t.events.c.data).where(t.events.c.type == "job_succeeded")
        ).one()
        old_data = {**succeeded.data, "outputs": {"Name": "Acme", "Score": "90"}}
        conn.execute(update(t.events).where(t.events.c.id == succeeded.id).values(data=old_data))
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="7"))


def _everything(store: Store) -> dict[str, Any]:
    """What the Store API shows of every batch, job and event."""
    batches = store.batches(limit=100)
    return {
        "batches": batches,
        "jobs": {b["batch_id"]: store.jobs(batch_id=b["batch_id"]) for b in batches},
        "events": store.events_after(0, limit=100_000),
    }


def test_a_schema_7_store_is_upgraded_reads_the_same_and_compacts(db_url: str) -> None:
    store = open_store(db_url)
    batch_id = _fill(store)
    before = _everything(store)
    # The outputs of the succeeded job are in its event as readers get it.
    (succeeded,) = [e for e in before["events"] if e["type"] == "job_succeeded"]
    assert succeeded["data"]["outputs"] == {"Name": "Acme", "Score": "90"}
    _as_schema_7(store)
    store.close()

    upgraded = open_store(db_url)
    try:
        with upgraded.engine.connect() as conn:
            version = conn.execute(_VERSION).scalar_one()
            job_indexes = {i["name"] for i in inspect(conn).get_indexes("sb_jobs")}
            if conn.dialect.name == "postgresql":
                kind = conn.exec_driver_sql(
                    "SELECT relkind FROM pg_class WHERE oid = 'sb_events'::regclass"
                ).scalar_one()
                assert kind == "p"  # the partitioned log
        assert int(version) == t.SCHEMA_VERSION == 8
        assert {"ix_sb_jobs_queued", "ix_sb_jobs_running", "ix_sb_jobs_failed"} <= job_indexes
        assert not {"ix_sb_jobs_batch_status", "ix_sb_jobs_lease"} & job_indexes
        assert _everything(upgraded) == before

        # The streams replay from any cursor, by batch and by job, as before.
        job_id = succeeded["job_id"]
        for scope in (Scope(batch_id=batch_id), Scope(job_id=job_id), Scope()):
            plan = plan_stream(upgraded, scope, 1)
            assert plan.snapshot is None and plan.cursor == 1
        by_job = upgraded.events_after(0, job_id=job_id)
        assert by_job == [e for e in before["events"] if e["job_id"] == job_id]

        # New events go on after the old ones; a new success reads with its outputs.
        again = upgraded.create_batch(
            sheet="n.csv", pipeline="p", phases=["a"], jobs=[NewJob(row=2, inputs={})]
        )
        job = upgraded.claim_next(again, "w", 30)
        assert job is not None
        upgraded.succeed_job(job["job_id"], {"Name": "New"}, owner="w")
        (new,) = upgraded.events_after(before["events"][-1]["id"], job_id=job["job_id"])[-1:]
        assert new["type"] == "job_succeeded" and new["data"]["outputs"] == {"Name": "New"}

        # The old batch compacts; its transitions, old outputs included, stay.
        assert upgraded.compact([batch_id]).batches == (batch_id,)
        kept = [e for e in before["events"] if e["batch_id"] == batch_id]
        kept = [e for e in kept if not e["type"].startswith("phase_")]
        assert upgraded.events_after(0, batch_id=batch_id, limit=1000) == kept
        assert plan_stream(upgraded, Scope(batch_id=batch_id), 1).snapshot is not None
    finally:
        upgraded.close()


def test_a_succeeded_job_event_reads_its_outputs_from_the_job_after_compaction(
    store: Store,
) -> None:
    """The outputs are stored once (in the job's results) and every reader of the event -
    the log, a job's replay, after compaction too - gets them back in its data."""
    jobs = [NewJob(row=r, inputs={}) for r in range(2, 6)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="p", phases=["a"], jobs=jobs)
    while (job := store.claim_next(batch_id, "w", 30)) is not None:
        store.phase_started(job["job_id"], 1, 1, "a", owner="w", wait=False)
        outputs = {"Name": f"n{job['row']}", "Final URL": f"https://{job['row']}.example"}
        store.succeed_job(job["job_id"], outputs, owner="w", phase_seconds=0.1)
    store.compact([batch_id])
    for job in store.jobs(batch_id=batch_id):
        want = {"Name": f"n{job['row']}", "Final URL": f"https://{job['row']}.example"}
        assert job["results"]["outputs"] == want
        (event,) = [
            e for e in store.events_after(0, job_id=job["job_id"]) if e["type"] == "job_succeeded"
        ]
        assert event["data"] == {"status": "succeeded", "row": job["row"], "outputs": want}
    with store.engine.connect() as conn:
        stored = conn.execute(
            select(t.events.c.data).where(t.events.c.type == "job_succeeded")
        ).scalars()
        assert all("outputs" not in (json.loads(d) if isinstance(d, str) else d) for d in stored)
