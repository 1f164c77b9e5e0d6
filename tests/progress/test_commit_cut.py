"""A connection cut during COMMIT: the group commits once, whether or not COMMIT arrived."""

from __future__ import annotations

import pytest

from progress import open_store
from progress.store import NewJob
from tests.support.tcp_proxy import proxied_postgres

pytestmark = pytest.mark.postgres

# The Query message psycopg sends for a commit: the proxy cuts the link around it.
COMMIT = b"COMMIT\x00"


@pytest.mark.parametrize("arrived", [True, False], ids=["commit-arrived", "commit-lost"])
def test_a_group_cut_at_commit_is_applied_exactly_once(pg_db: str, arrived: bool) -> None:
    with proxied_postgres(pg_db) as (url, proxy):
        store = open_store(url, poll_interval=0.05)
        try:
            job = NewJob(row=2, inputs={"Website": "s.test"})
            store.create_batch(sheet="s", pipeline="p", phases=["a"], jobs=[job])
            # COMMIT reaches the server (it commits) or not (it rolls back); either way the
            # link dies before the answer, so the writer cannot know without asking.
            proxy.cut_at(COMMIT, forward=arrived)
            event_id = store.note(job.job_id, "written once")
            assert proxy.cuts == 1
            notes = [e["id"] for e in store.events_after(0) if e["type"] == "job_note"]
            assert notes == [event_id]
            ids = [e["id"] for e in store.events_after(0)]
            assert ids == list(range(1, len(ids) + 1))
            assert store.job(job.job_id)["last_event_id"] <= store.last_event_id()
        finally:
            store.close()
