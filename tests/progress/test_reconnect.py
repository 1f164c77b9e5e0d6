"""PostgreSQL sessions lost under the writers (killed backends, a paused lock holder): every
write lands once, no id is skipped, nobody waits on a dead peer."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from progress import open_store
from progress.batch_writes import NewJob
from tests.support.cli import cli_env
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


_HOLDER = """
import sys
from sqlalchemy import text
from progress.engine import create_store_engine

with create_store_engine(sys.argv[1]).connect() as conn:
    conn.execute(text("SELECT last_id FROM sb_log_head WHERE id = 1 FOR UPDATE"))
    print("locked", flush=True)
    sys.stdin.readline()
    try:
        conn.execute(text("UPDATE sb_log_head SET last_id = last_id WHERE id = 1"))
        conn.commit()
        print("committed", flush=True)
    except Exception as exc:
        print("refused", type(exc).__name__, flush=True)
"""


def test_a_process_paused_inside_a_write_does_not_stall_the_others(
    named_pg: tuple[str, str],
) -> None:
    """A worker SIGSTOPped while its transaction holds the log head's lock (what made a
    celery run hang after a takeover): the server ends its session, others write on."""
    url, _name = named_pg
    store = open_store(url, poll_interval=0.05)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        job = NewJob(row=2, inputs={"Website": "s.test"})
        store.create_batch(sheet="s", pipeline="p", phases=["a"], jobs=[job])
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        os.kill(holder.pid, signal.SIGSTOP)
        written: list[int] = []
        writer = threading.Thread(target=lambda: written.append(store.note(job.job_id, "on")))
        writer.start()
        writer.join(timeout=120)  # a hang guard, not a timing: the lock is never released
        assert written, "a write waited for a paused process's lock"
        os.kill(holder.pid, signal.SIGCONT)
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().startswith("refused")  # its session was ended
        notes = [e for e in store.events_after(0) if e["type"] == "job_note"]
        assert [e["id"] for e in notes] == written
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.communicate()
        store.close()
