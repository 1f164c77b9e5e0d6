"""Reusable fixtures for tests that need websites: real servers on 127.0.0.1, a safe fetcher.

Import the fixtures into a conftest (`from tests.support.sites import site_server, ...`).
Nothing here lets a test reach a non-loopback address: names resolve through `fake_resolve`
(a made-up map, no real DNS) and `loopback_only` turns any other connection into a failure.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pipeline.context import JobContext
from pipeline.fetcher import Fetcher
from pipeline.phase import Pipeline
from sheetbatch.sites import SiteServer, load_sites

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SITES = ROOT / "src" / "sheetbatch" / "examples" / "sites"
TEST_SITES = ROOT / "tests" / "sites"
EXAMPLE_CSV = ROOT / "src" / "sheetbatch" / "examples" / "companies.csv"

FAKE_DNS: Mapping[str, list[str]] = {
    "intranet.test": ["10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["93.184.215.14", "192.168.1.10"],
    "loopy.test": ["127.0.0.1"],
    "v6loop.test": ["::1"],
    "secure.test": ["127.0.0.1"],
    "impostor.test": ["127.0.0.1"],
}


def fake_resolve(host: str, port: int) -> list[str]:
    """Resolve only the names in `FAKE_DNS`; everything else is an unknown host."""
    try:
        return list(FAKE_DNS[host])
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


@pytest.fixture(scope="session")
def site_server() -> Iterator[SiteServer]:
    """The example sites and the test-only sites, served for the whole session."""
    with SiteServer(EXAMPLE_SITES, sites=load_sites(TEST_SITES)) as server:
        yield server


@pytest.fixture
def fetcher(site_server: SiteServer) -> Iterator[Fetcher]:
    """A fetcher allowed to reach the site server, resolving names with `fake_resolve`."""
    with Fetcher(allow_hosts=site_server.allow_hosts, resolve=fake_resolve, timeout=10.0) as f:
        yield f


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any TCP connection to a non-loopback address, before it is attempted.

    A safety net for this machine (traffic to private ranges is flagged): if the fetcher's guard
    were broken, the test fails here instead of sending a packet.
    """
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple):
            host = str(address[0]).split("%", 1)[0]
            if not ipaddress.ip_address(host).is_loopback:
                raise AssertionError(f"test tried to connect to {host}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def run_phases(pipeline: Pipeline, ctx: JobContext) -> dict[str, Any]:
    """Run every phase in order on `ctx`, merging results as a runner would; return results."""
    for phase in pipeline.phases:
        ctx.results.update(phase.run(ctx) or {})
    return ctx.results
