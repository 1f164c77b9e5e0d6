"""Allow-listed local names (`localhost:8080`, `intranet`) through the company pipeline's
resolve phase, against the example sites served for real on 127.0.0.1; and a refused
redirect that says it was a redirect."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.company import company_pipeline
from pipeline.context import JobContext
from pipeline.errors import BlockedAddress
from pipeline.fetcher import Fetcher
from pipeline.urls import InvalidURL
from sheetbatch.sites import SiteServer
from tests.support.sites import fake_resolve


def resolve_phase(website: str, fetcher: Fetcher) -> dict[str, object]:
    ctx = JobContext(
        job_id="job-1",
        batch_id="batch-1",
        inputs={"Company": "Acme", "Website": website},
        reporter=lambda fraction, message: None,
        services={"fetcher": fetcher},
    )
    return dict(company_pipeline().phases[0].run(ctx) or {})


def intranet_resolve(host: str, port: int) -> list[str]:
    """The office's DNS: `intranet` is this machine; anything else as the tests' fake DNS."""
    return ["127.0.0.1"] if host == "intranet" else fake_resolve(host, port)


def test_an_allow_listed_localhost_port_is_fetched(site_server: SiteServer) -> None:
    port = site_server.port("acme")
    with Fetcher(allow_hosts=[f"localhost:{port}"]) as fetcher:
        results = resolve_phase(f"http://localhost:{port}/", fetcher)
    assert results["final_url"] == f"http://localhost:{port}/"
    assert "Acme Widgets" in str(results["_homepage_html"])


def test_an_allow_listed_intranet_name_is_fetched(site_server: SiteServer) -> None:
    port = site_server.port("acme")
    with Fetcher(allow_hosts=[f"intranet:{port}"], resolve=intranet_resolve) as fetcher:
        results = resolve_phase(f"http://intranet:{port}/", fetcher)
        assert results["site_url"] == f"http://intranet:{port}/"
        # Another port of the same name is neither allowed nor taken for a website.
        with pytest.raises(InvalidURL, match="not a URL"):
            resolve_phase(f"http://intranet:{port + 1}/", fetcher)
    with (
        Fetcher(allow_hosts=[], resolve=intranet_resolve) as fetcher,
        pytest.raises(InvalidURL, match="not a URL: 'http://intranet:"),
    ):
        resolve_phase(f"http://intranet:{port}/", fetcher)


@pytest.fixture
def redirecting() -> Iterator[tuple[int, int]]:
    """A server on 127.0.0.1 redirecting every request to another loopback port (closed)."""
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    target = spare.getsockname()[1]

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{target}/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], target
    finally:
        server.shutdown()
        server.server_close()
        spare.close()


def test_a_refused_redirect_says_it_was_a_redirect(redirecting: tuple[int, int]) -> None:
    port, target = redirecting
    with (
        Fetcher(allow_hosts=[f"127.0.0.1:{port}"]) as fetcher,
        pytest.raises(BlockedAddress) as info,
    ):
        resolve_phase(f"http://127.0.0.1:{port}/", fetcher)
    assert info.value.reason == f"redirect to http://127.0.0.1:{target}/ blocked (loopback address)"
