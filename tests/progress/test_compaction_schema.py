"""Schema 6 (compaction): a schema-5 store is upgraded, keeps its log, and compacts."""

from __future__ import annotations

from sqlalchemy import inspect, select, text, update

from progress import open_store
from progress import schema as t
from progress.batch_writes import NewJob

_V5_EVENTS = (
    "CREATE TABLE sb_events (id BIGINT NOT NULL, type VARCHAR(40) NOT NULL, "
    "batch_id VARCHAR(64) NOT NULL, job_id VARCHAR(64), time FLOAT NOT NULL, "
    "data JSON NOT NULL, PRIMARY KEY (id))"
)

_V5_COLUMNS = "id, type, batch_id, job_id, time, data"


def _make_schema_5(db_url: str) -> tuple[str, list[dict[str, object]]]:
    """A store as sheetbatch with schema 5 left it, holding one finished batch."""
    store = open_store(db_url)
    batch_id = store.create_batch(
        sheet="old.csv", pipeline="p", phases=["a"], jobs=[NewJob(row=2, inputs={})]
    )
    job = store.claim_next(batch_id, "w", 30)
    assert job is not None
    store.phase_started(job["job_id"], 1, 1, "a", owner="w")
    store.succeed_job(job["job_id"], {"Name": "x"}, owner="w", phase_seconds=0.1)
    log = [dict(e) for e in store.events_after(0)]
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("ALTER TABLE sb_events RENAME TO sb_events_new")
            conn.exec_driver_sql("DROP INDEX ix_sb_events_batch")
            conn.exec_driver_sql("DROP INDEX ix_sb_events_of_job")
            conn.exec_driver_sql(_V5_EVENTS)
            conn.exec_driver_sql(
                f"INSERT INTO sb_events ({_V5_COLUMNS}) SELECT {_V5_COLUMNS} FROM sb_events_new"
            )
            conn.exec_driver_sql("DROP TABLE sb_events_new")
            conn.exec_driver_sql("CREATE INDEX ix_sb_events_batch ON sb_events (batch_id, id)")
            conn.exec_driver_sql("CREATE INDEX ix_sb_events_job ON sb_events (job_id, id)")
        conn.exec_driver_sql("DROP INDEX ix_sb_jobs_batch_row")
        conn.exec_driver_sql("ALTER TABLE sb_batches DROP COLUMN compacted")
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="5"))
    store.close()
    return batch_id, log


def test_a_schema_5_store_is_upgraded_keeps_its_log_and_compacts(db_url: str) -> None:
    batch_id, log = _make_schema_5(db_url)
    upgraded = open_store(db_url)
    try:
        with upgraded.engine.connect() as conn:
            version = conn.execute(
                select(t.meta.c.value).where(t.meta.c.key == "schema_version")
            ).scalar_one()
            columns = {c["name"] for c in inspect(conn).get_columns("sb_batches")}
            indexes = {i["name"] for i in inspect(conn).get_indexes("sb_jobs")}
            if conn.dialect.name == "sqlite":
                # The id is the rowid now: no separate index of every event id.
                autoindexes = conn.execute(
                    text("SELECT name FROM sqlite_master WHERE tbl_name = 'sb_events'")
                ).scalars()
                assert sorted(autoindexes) == [
                    "ix_sb_events_batch", "ix_sb_events_of_job", "sb_events"
                ]  # fmt: skip
        assert int(version) == t.SCHEMA_VERSION  # 6 and every later step
        assert "compacted" in columns and "ix_sb_jobs_batch_row" in indexes
        assert [dict(e) for e in upgraded.events_after(0)] == log
        assert upgraded.compact().batches == (batch_id,)
        kept = [e["type"] for e in upgraded.events_after(0, batch_id=batch_id)]
        assert kept == [
            "batch_created",
            "job_queued",
            "job_started",
            "job_succeeded",
            "batch_finished",
        ]
        # New events go on after the old ones.
        again = upgraded.create_batch(sheet="new.csv", pipeline="p", phases=["a"], jobs=[])
        assert upgraded.batch(again)["last_event_id"] > log[-1]["id"]
    finally:
        upgraded.close()
