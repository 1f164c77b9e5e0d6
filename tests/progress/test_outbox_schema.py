"""Schema 4 adds the notification outbox; a schema-3 store is upgraded and then records."""

from __future__ import annotations

from sqlalchemy import inspect, select, update

from progress import open_store
from progress import schema as t
from progress.batch_writes import NewJob
from progress.notify_model import NotifyState, Targets
from progress.notify_tables import TABLES


def test_a_schema_3_store_gains_the_outbox_and_records_into_it(db_url: str) -> None:
    store = open_store(db_url)
    kept = store.create_batch(sheet="old.csv", pipeline="p", phases=["a"], jobs=[])
    with store.engine.begin() as conn:
        for table in TABLES:
            table.drop(conn)
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="3"))
    store.close()
    upgraded = open_store(db_url)
    try:
        with upgraded.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            version = conn.execute(
                select(t.meta.c.value).where(t.meta.c.key == "schema_version")
            ).scalar_one()
        assert {"sb_notifications", "sb_disabled_urls"} <= names
        assert int(version) == t.SCHEMA_VERSION
        assert upgraded.batch(kept)["sheet"] == "old.csv"
        batch_id = upgraded.create_batch(
            sheet="new.csv",
            pipeline="p",
            phases=["a"],
            jobs=[NewJob(row=2, inputs={})],
            options={"notify": Targets(("https://a.example/h",)).to_json()},
        )
        job = upgraded.claim_next(batch_id, "w", 30)
        assert job is not None
        upgraded.cancel_job(job["job_id"], owner="w")
        (made,) = upgraded.notifications(batch_id=batch_id)
        assert (made.type, made.state) == ("batch.failed", NotifyState.PENDING)
    finally:
        upgraded.close()
