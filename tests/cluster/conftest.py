"""Fixtures of the distributed tests: one RabbitMQ vhost per session, a PostgreSQL schema and
real `sheetbatch worker` subprocesses per test."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from progress import Store, open_store
from tests.support.cluster import rabbit_vhost, start_worker, stop, wait_for

# Short leases and re-nudges so recoveries happen within a test's few seconds.
CLUSTER_ENV = {
    "SHEETBATCH_RUN_LEASE_SECONDS": "2",
    "SHEETBATCH_EXECUTOR_REDISPATCH_SECONDS": "2",
    "SHEETBATCH_TEST_PHASE_SECONDS": "0.1",
}


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    yield from rabbit_vhost()


@pytest.fixture
def app_name() -> str:
    """The application_name every connection of the test's processes carries."""
    return "sb_cluster_" + secrets.token_hex(4)


@pytest.fixture
def cluster_db(pg_db: str, app_name: str) -> str:
    """The test's PostgreSQL schema, its connections named (to cut them, and only them)."""
    return f"{pg_db}&application_name={app_name}"


@pytest.fixture
def cluster_store(cluster_db: str) -> Iterator[Store]:
    store = open_store(cluster_db, poll_interval=0.05)
    try:
        yield store
    finally:
        store.close()


Spawn = Callable[..., list[subprocess.Popen[bytes]]]


@pytest.fixture
def workers(cluster_db: str, broker: str, cluster_store: Store, tmp_path: Path) -> Iterator[Spawn]:
    """Start a named worker (waiting until it registered); all are stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(*names: str, concurrency: int = 2, **env: str) -> list[subprocess.Popen[bytes]]:
        processes = [
            start_worker(
                cluster_db,
                broker,
                name=name,
                cwd=tmp_path,
                concurrency=concurrency,
                **{**CLUSTER_ENV, **env},
            )
            for name in names
        ]
        started.extend(processes)

        def registered() -> bool:
            alive = {w.owner.rsplit(":", 1)[-1] for w in cluster_store.workers() if w.alive}
            return alive >= set(names)

        wait_for(registered, 30, f"workers {names} to register")
        return processes

    yield spawn
    stop(*started)
    _purge(broker)


def _purge(broker: str) -> None:
    """Drop what a test left in the queue, so the next test's workers start clean."""
    from sheetbatch.celery_app import QUEUE, create_celery

    app = create_celery(broker)
    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(QUEUE)
    except Exception:  # the queue may not exist yet
        pass
    finally:
        app.close()
