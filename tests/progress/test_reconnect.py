"""PostgreSQL backends killed under the writers: every write lands once, no id is skipped."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import pytest

from progress import open_store
from progress.store import NewJob
from tests.support.cluster import terminate_backends

pytestmark = pytest.mark.postgres


@pytest.fixture
def named_pg(pg_db: str) -> Iterator[tuple[str, str]]:
    """The test's schema URL with an application_name only its own connections carry."""
    name = "sb_kill_" + secrets.token_hex(4)
    yield f"{pg_db}&application_name={name}", name


def test_writers_reconnect_after_their_backends_are_killed(named_pg: tuple[str, str]) -> None:
    url, name = named_pg
    store = open_store(url, poll_interval=0.05)
    try:
        jobs = [NewJob(row=i + 2, inputs={"Website": f"s{i}.test"}) for i in range(120)]
        batch_id = store.create_batch(sheet="s", pipeline="p", phases=["a", "b"], jobs=jobs)
        errors: list[BaseException] = []
        todo = [job.job_id for job in jobs]
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    job_id = todo.pop()
                try:
                    claim = store.claim_job(job_id, "w", 30)
                    assert claim is not None
                    store.phase_started(job_id, 1, 2, "a", owner="w", epoch=claim.epoch)
                    store.advance(
                        job_id, seconds=0.0, next_phase=(2, 2, "b"), owner="w", epoch=claim.epoch
                    )
                    store.succeed_job(job_id, {}, owner="w", epoch=claim.epoch, phase_seconds=0.0)
                except BaseException as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        killed = 0
        for _ in range(2):  # two cuts, further apart than one write's retries
            threading.Event().wait(0.2)
            killed += terminate_backends(name)
        for thread in threads:
            thread.join()
        assert killed > 0
        assert errors == []
        events = store.events_after(0, limit=100_000)
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        succeeded = [e["job_id"] for e in events if e["type"] == "job_succeeded"]
        assert sorted(succeeded) == sorted(j.job_id for j in jobs)
        assert store.batch(batch_id)["status"] == "completed"
    finally:
        store.close()
