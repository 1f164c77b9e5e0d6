"""The hot path's plain SQL (`progress.statements`), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from progress import Store
from progress import schema as t
from progress.batch_writes import NewJob
from progress.commit import Tx
from progress.statements import BatchCounts, JobRow
from progress.status import EventType


def test_job_rows_carry_every_column_of_the_jobs_table() -> None:
    # A column added to the schema but not to JobRow would silently vanish from snapshots.
    assert JobRow._fields == tuple(column.name for column in t.jobs.columns)
    assert set(BatchCounts._fields) <= {column.name for column in t.batches.columns}


def test_a_job_read_on_the_hot_path_equals_the_snapshot_readers_get(store: Store) -> None:
    inputs = {"Company": "Ünïcode & Co", "Website": "example.test"}
    batch_id = store.create_batch(
        sheet="s.csv", pipeline="p", phases=["a"], jobs=[NewJob(row=2, inputs=inputs)]
    )
    claimed = store.claim_next(batch_id, "w1", 30)
    assert claimed is not None
    store.phase_started(claimed["job_id"], 1, 1, "a", owner="w1")
    store.succeed_job(
        claimed["job_id"], {"Name": "X"}, owner="w1", phase_seconds=0.5, results={"k": [1, 2]}
    )
    job = store.job(claimed["job_id"])
    assert job["inputs"] == inputs
    assert job["results"] == {"k": [1, 2], "outputs": {"Name": "X"}}
    assert job["phase_seconds"] == {"a": 0.5}
    # What claim_next returned without re-reading the row matches what was stored.
    assert claimed["status"] == "running" and claimed["attempts"] == 1
    assert claimed["last_event_id"] < job["last_event_id"]


def test_unknown_columns_are_refused_before_any_sql_is_built(store: Store) -> None:
    def _op(tx: Tx) -> None:
        tx.sql.update_job("j-x", {"status; DROP TABLE sb_jobs": "x"})

    with pytest.raises(ValueError, match="not columns of sb_jobs"):
        store._apply(_op)


def test_a_driver_error_surfaces_as_sqlalchemys_and_the_store_goes_on(store: Store) -> None:
    batch_id = store.create_batch(
        sheet="s.csv", pipeline="p", phases=["a"], jobs=[NewJob(row=2, inputs={})]
    )
    head = store.last_event_id()

    def _duplicate_event(tx: Tx) -> None:
        tx.emit(EventType.JOB_NOTE, batch_id, None, {})
        tx.rows[-1]["id"] = head  # an id the log already has
        tx.spill()

    with pytest.raises(IntegrityError):
        store._apply(_duplicate_event)
    assert store.last_event_id() == head  # nothing half-written
    claimed = store.claim_next(batch_id, "w1", 30)
    assert claimed is not None
    assert [e["type"] for e in store.events_after(head)] == ["job_started"]
    assert store.events_after(head)[0]["id"] == head + 1
