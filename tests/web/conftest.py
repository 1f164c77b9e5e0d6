"""Fixtures of the web tests: a real `sheetbatch serve` process and a store on its database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from progress import Store, open_store
from tests.web.support import Server, start_server


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session: SQLite, 2 rows at a time, 5 s heartbeats."""
    workdir = tmp_path_factory.mktemp("server")
    server = start_server(
        workdir,
        f"sqlite:///{workdir / 'progress.db'}",
        args=["--ping-interval", "5", "--concurrency", "2"],
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(web_server: Server) -> Iterator[httpx.Client]:
    """An HTTP client of the session's server."""
    with web_server.client() as c:
        yield c


@pytest.fixture(scope="session")
def server_store(web_server: Server) -> Iterator[Store]:
    """The session server's store, opened from the test process (to read the log)."""
    store = open_store(web_server.db_url, poll_interval=0.05)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def sheets(web_server: Server, request: pytest.FixtureRequest) -> Path:
    """A folder for this test's sheets, inside the directory the session's server allows."""
    folder = web_server.sheets / re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)[:80]
    folder.mkdir(parents=True, exist_ok=True)
    return folder
