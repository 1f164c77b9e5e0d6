"""A process's PostgreSQL connections stay within `[store] pool_size` (issue 13): threads beyond
it wait for a connection and all finish; a wait past the pool's timeout and a server out of
slots are errors that name their cause and the setting."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from progress import Store, open_store
from progress.batch_writes import NewJob
from progress.errors import NoConnectionSlot, StoreBusy
from tests.support.databases import PG_URL, postgres_role_url

pytestmark = pytest.mark.postgres

ADMIN = PG_URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def named_pg(pg_db: str) -> Iterator[tuple[str, str]]:
    """The test's schema URL with an application_name only its own connections carry."""
    name = "sb_budget_" + secrets.token_hex(4)
    yield f"{pg_db}&application_name={name}", name


def _sessions(admin: psycopg.Connection[Any], application_name: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _row_work(store: Store, job_ids: list[str], lock: threading.Lock, errors: list[Any]) -> None:
    """What a worker thread does to the store for each row: claim, phases, reads, success."""
    while True:
        with lock:
            if not job_ids:
                return
            job_id = job_ids.pop()
        try:
            claim = store.claim_job(job_id, "w", 30)
            assert claim is not None
            store.phase_started(job_id, 1, 2, "a", owner="w", epoch=claim.epoch)
            store.job(job_id)
            store.advance(job_id, seconds=0.0, next_phase=(2, 2, "b"), owner="w", epoch=claim.epoch)
            store.events_after(0, limit=50)
            store.succeed_job(job_id, {}, owner="w", epoch=claim.epoch, phase_seconds=0.0)
        except BaseException as exc:
            errors.append(exc)


@pytest.mark.parametrize("pool_size", [1, 4])
def test_three_times_as_many_threads_as_connections_all_finish_within_the_budget(
    named_pg: tuple[str, str], pool_size: int
) -> None:
    url, name = named_pg
    store = open_store(url, poll_interval=0.05, pool_size=pool_size)
    admin = psycopg.connect(ADMIN, autocommit=True)
    try:
        jobs = [NewJob(row=i + 2, inputs={"Website": f"s{i}.test"}) for i in range(90)]
        batch_id = store.create_batch(sheet="s", pipeline="p", phases=["a", "b"], jobs=jobs)
        # Someone follows the log, as `serve` and `run` do: with a budget above one, the
        # LISTEN connection is open too, and counted.
        store.wait(0, 0.01)
        todo, lock, errors = [j.job_id for j in jobs], threading.Lock(), list[Any]()
        threads = [
            threading.Thread(target=_row_work, args=(store, todo, lock, errors))
            for _ in range(3 * pool_size)
        ]
        for thread in threads:
            thread.start()
        most = 0
        while any(thread.is_alive() for thread in threads):
            most = max(most, _sessions(admin, name))
        for thread in threads:
            thread.join()
        most = max(most, _sessions(admin, name))

        assert errors == []
        assert store.batch(batch_id)["status"] == "completed"
        assert store.feed.listening is (pool_size > 1)
        assert 1 <= most <= pool_size
        if pool_size > 1:
            # The budget is used, not just respected: several threads were served at once.
            assert most >= 2
    finally:
        admin.close()
        store.close()


def test_a_wait_past_the_pool_timeout_is_store_busy_naming_the_setting(
    named_pg: tuple[str, str],
) -> None:
    url, _name = named_pg
    store = open_store(url, pool_size=3, pool_timeout=0.2)
    held = [store.engine.connect() for _ in range(2)]  # the pool's two (LISTEN has the third)
    try:
        with pytest.raises(StoreBusy) as caught:
            store.last_event_id()
        message = str(caught.value)
        assert "[store] pool_size = 3" in message and "0.2 s" in message
    finally:
        for conn in held:
            conn.close()
    assert store.last_event_id() == 0  # a connection came back: the store answers again
    store.close()


@pytest.fixture
def limited_role() -> Iterator[tuple[str, str]]:
    """A role allowed 3 sessions, on a schema of its own."""
    yield from postgres_role_url(3)


def _hoard(url: str) -> list[psycopg.Connection[Any]]:
    """Open sessions as the URL's role until PostgreSQL refuses one; those opened."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    held: list[psycopg.Connection[Any]] = []
    while True:
        try:
            held.append(psycopg.connect(dsn, autocommit=True))
        except psycopg.OperationalError as exc:
            assert "too many connections" in str(exc)
            return held
        assert len(held) < 10


def test_a_server_out_of_slots_is_no_connection_slot_naming_the_setting(
    limited_role: tuple[str, str],
) -> None:
    url, _role = limited_role
    open_store(url, pool_size=2).close()  # the schema exists; the sessions are gone
    held = _hoard(url)
    try:
        with pytest.raises(NoConnectionSlot) as caught:
            open_store(url, pool_size=5)
        message = str(caught.value)
        assert message.startswith("PostgreSQL has no connection slot left")
        assert "the role's CONNECTION LIMIT reached" in message
        assert "[store] pool_size (now 5)" in message
        assert "max_connections" in message
    finally:
        for conn in held:
            conn.close()
