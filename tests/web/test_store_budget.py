"""The web edge when the store's connections run out (issue 13): a request that waits past the
pool's timeout is a 503 with Retry-After, a PostgreSQL out of slots makes /healthz say why -
never a 500, never a hang. Real PostgreSQL, a real pool."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask

from progress import Store, open_store
from progress.batch_writes import NewJob
from sheetbatch.config import load_settings
from sheetbatch.web import close_app, create_app, shutdown_app
from tests.support.cluster import terminate_backends
from tests.support.databases import postgres_role_url

pytestmark = pytest.mark.postgres


def _app(store: Store) -> Flask:
    settings = load_settings(config_files=[], environ={}, overrides={"pool_size": 3})
    return create_app(settings, store=store)


@pytest.fixture
def busy_store(pg_db: str) -> Iterator[Store]:
    """A store of 3 connections (2 pooled, 1 LISTEN) whose threads wait 0.3 s for one."""
    store = open_store(pg_db, pool_size=3, pool_timeout=0.3)
    try:
        yield store
    finally:
        store.close()


def test_requests_that_find_every_connection_busy_get_503_with_retry_after(
    busy_store: Store, tmp_path: Path
) -> None:
    batch_id = busy_store.create_batch(
        sheet="s.csv", pipeline="p", phases=["a"], jobs=[NewJob(row=2, inputs={})]
    )
    app = _app(busy_store)
    api = app.test_client()
    held = [busy_store.engine.connect() for _ in range(2)]  # every pooled connection in use
    try:
        for path in (f"/api/batches/{batch_id}", f"/events/batches/{batch_id}"):
            answer = api.get(path)
            assert answer.status_code == 503, (path, answer.get_data(as_text=True))
            assert answer.headers["Retry-After"] == "2"
            body = answer.get_json()
            assert body["code"] == "unavailable"
            assert "[store] pool_size = 3" in body["error"] and "0.3 s" in body["error"]
    finally:
        for conn in held:
            conn.close()
    answer = api.get(f"/api/batches/{batch_id}")
    assert answer.status_code == 200 and answer.get_json()["batch_id"] == batch_id
    shutdown_app(app, timeout=5)
    close_app(app)


@pytest.fixture
def limited_role() -> Iterator[tuple[str, str]]:
    """A role allowed 3 sessions, on a schema of its own."""
    yield from postgres_role_url(3)


def test_healthz_says_postgresql_has_no_slot_left_and_names_the_setting(
    limited_role: tuple[str, str], tmp_path: Path
) -> None:
    url, role = limited_role
    name = "sb_health_" + secrets.token_hex(4)
    store = open_store(f"{url}&application_name={name}", pool_size=3)
    app = _app(store)
    api = app.test_client()
    held: list[psycopg.Connection[Any]] = []
    try:
        assert api.get("/healthz").status_code == 200
        # The server restarts under the app (its sessions end) and, before the app
        # reconnects, other clients of the role take every slot.
        assert terminate_backends(name) >= 1
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        while True:
            try:
                held.append(psycopg.connect(dsn, autocommit=True))
            except psycopg.OperationalError:
                break
            assert len(held) <= 3
        answer = api.get("/healthz")
        assert answer.status_code == 503
        error = answer.get_json()["error"]
        assert error.startswith("PostgreSQL has no connection slot left")
        assert f'too many connections for role "{role}"' in error
        assert "[store] pool_size (now 3)" in error
        # Another request meets the same refusal: 503 with Retry-After, not a 500.
        answer = api.get("/api/batches")
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert "[store] pool_size (now 3)" in answer.get_json()["error"]
    finally:
        for conn in held:
            conn.close()
        shutdown_app(app, timeout=5)
        close_app(app)
        store.close()
