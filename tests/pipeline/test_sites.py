"""The fixture website server: ports per site, behaviours from _site.toml, concurrency."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sheetbatch.sites import Site, SiteServer, render_example_csv


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, trust_env=False, timeout=10) as c:
        yield c


def test_each_site_has_its_own_port_and_robots(
    site_server: SiteServer, client: httpx.Client
) -> None:
    ports = {site_server.port(name) for name in site_server.sites}
    assert len(ports) == len(site_server.sites)
    assert "Disallow: /team" in client.get(site_server.url("dunmore") + "robots.txt").text
    assert client.get(site_server.url("bluefin") + "robots.txt").status_code == 404
    assert site_server.url("acme") == f"http://127.0.0.1:{site_server.port('acme')}/"
    assert site_server.allow_hosts == ["127.0.0.1"]


def test_files_and_behaviours(site_server: SiteServer, client: httpx.Client) -> None:
    acme = site_server.url("acme")
    assert client.get(acme).status_code == 200
    assert client.get(acme + "about").text == client.get(acme + "about.html").text
    assert client.get(site_server.url("bluefin") + "about-us/").status_code == 200
    assert client.get(acme + "nope").status_code == 404
    home = client.get(site_server.url("evergreen"))
    assert (home.status_code, home.headers["location"]) == (302, "/home")
    gateway = site_server.url("gateway")
    assert client.get(gateway + "broken").status_code == 503
    assert (
        client.get(gateway + "to-plain").headers["location"] == site_server.url("plain") + "about"
    )
    assert client.get(gateway + "loop/8").headers["location"] == "/"
    assert client.get(gateway + "brochure.pdf").headers["content-type"] == "application/pdf"
    huge = client.get(gateway + "huge")
    assert len(huge.content) == 3_000_000
    assert huge.text.endswith("</body></html>")


@pytest.mark.parametrize(
    "path", ["_site.toml", "../acme/index.html", "%2e%2e/acme/index.html", ".hidden"]
)
def test_config_and_paths_outside_the_site_are_not_served(
    site_server: SiteServer, client: httpx.Client, path: str
) -> None:
    assert client.get(site_server.url("evergreen") + path).status_code == 404


@pytest.mark.parametrize(
    "target", ["/../acme/index.html", "/%2e%2e/acme/index.html", "/_site.toml"]
)
def test_raw_traversal_attempts_are_404(site_server: SiteServer, target: str) -> None:
    port = site_server.port("evergreen")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 404"), reply[:40]


def test_dead_url_refuses_connections(site_server: SiteServer) -> None:
    port = int(site_server.dead_url.rsplit(":", 1)[1].rstrip("/"))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_render_example_csv(tmp_path: Path, site_server: SiteServer) -> None:
    template = tmp_path / "t.csv"
    template.write_text("Company,Website\nA,{site:acme}\nB,{dead}\nC,x.test\n", encoding="utf-8")
    rendered = render_example_csv(template, site_server)
    assert rendered.splitlines() == [
        "Company,Website",
        f"A,{site_server.url('acme')}",
        f"B,{site_server.dead_url}",
        "C,x.test",
    ]
    template.write_text("A,{site:nosuchsite}\n", encoding="utf-8")
    with pytest.raises(KeyError, match="nosuchsite"):
        render_example_csv(template, site_server)


def test_handles_64_concurrent_requests() -> None:
    slow = Site(name="slow", files={"/index.html": b"<p>hi</p>"}, slow={"/wait": 60.0})
    with SiteServer(sites=[slow]) as server:
        port = server.port("slow")
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(64)]
        try:
            for conn in conns:
                conn.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = time.monotonic() + 30  # generous: only a bound, not a measurement
            while server.active("slow") < 64 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert server.active("slow") == 64
        finally:
            for conn in conns:
                conn.close()
    assert server.active("slow") == 0  # stop() woke and ended every waiting handler


def test_latency_applies_to_every_request() -> None:
    site = Site(name="s", files={"/index.html": b"<p>hi</p>"})
    with SiteServer(sites=[site], latency=0.2) as server, httpx.Client(trust_env=False) as c:
        started = time.monotonic()
        assert c.get(server.url("s")).status_code == 200
        assert time.monotonic() - started >= 0.15


def test_synthetic_sites() -> None:
    with SiteServer.synthetic(5) as server, httpx.Client(trust_env=False) as c:
        assert sorted(server.sites) == [f"site0000{n}" for n in range(1, 6)]
        assert "Company 00003" in c.get(server.url("site00003")).text
        assert "hello@company-00005.test" in c.get(server.url("site00005") + "contact").text
        assert server.hits("site00005") == 1


def test_stop_is_idempotent_and_restart_works() -> None:
    server = SiteServer(sites=[Site(name="s", files={"/index.html": b"x"})])
    server.stop()
    server.start()
    first = server.url("s")
    server.stop()
    server.stop()
    with pytest.raises(KeyError):
        server.url("s")
    with server:
        assert server.url("s") != "" and first.startswith("http://127.0.0.1:")
