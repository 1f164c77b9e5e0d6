"""A connection cut during COMMIT: the group commits once, whether or not COMMIT arrived."""

from __future__ import annotations

import pytest

from progress import open_store
from progress.batch_writes import NewJob
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


# The closing writes of a group (job rows, counters, events, the log head): the log head's
# update is among them.
LOG_HEAD_UPDATE = b'UPDATE sb_log_head SET "last_id"'


@pytest.mark.parametrize("arrived", [True, False], ids=["sent", "lost"])
def test_a_group_cut_inside_its_closing_writes_is_applied_exactly_once(
    pg_db: str, arrived: bool
) -> None:
    with proxied_postgres(pg_db) as (url, proxy):
        store = open_store(url, poll_interval=0.05)
        try:
            jobs = [NewJob(row=r, inputs={"Website": f"s{r}.test"}) for r in (2, 3)]
            store.create_batch(sheet="s", pipeline="p", phases=["a", "b"], jobs=jobs)
            claim = store.claim_job(jobs[0].job_id, "w1", 30)
            assert claim is not None
            store.phase_started(jobs[0].job_id, 1, 2, "a", owner="w1", epoch=claim.epoch)
            # The link dies while the closing writes are on their way (or before the server
            # got them): the group runs again on a new connection, applied once.
            proxy.cut_at(LOG_HEAD_UPDATE, forward=arrived)
            store.advance(
                jobs[0].job_id,
                seconds=0.1,
                results={"a": 1},
                owner="w1",
                epoch=claim.epoch,
                next_phase=(2, 2, "b"),
            )
            assert proxy.cuts == 1
            store.succeed_job(
                jobs[0].job_id, {"Score": "1"}, owner="w1", epoch=claim.epoch, phase_seconds=0.1
            )
            events = store.events_after(0)
            ids = [e["id"] for e in events]
            assert ids == list(range(1, len(ids) + 1))
            history = [e["type"] for e in events if e["job_id"] == jobs[0].job_id]
            assert history == [
                "job_queued",
                "job_started",
                "phase_started",
                "phase_finished",
                "phase_started",
                "phase_finished",
                "job_succeeded",
            ]
            job = store.job(jobs[0].job_id)
            assert job["status"].value == "succeeded"
            assert job["results"]["a"] == 1
            assert store.batch(job["batch_id"])["counts"]["succeeded"] == 1
        finally:
            store.close()
