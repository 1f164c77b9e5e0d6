"""The fetcher's rules against real servers on 127.0.0.1 (and a fake resolver for names).

No test can reach a non-loopback address: blocked addresses are refused before connecting, and
the `loopback_only` safety net (autouse in conftest) fails any other attempt.
"""

from __future__ import annotations

import threading

import pytest

from pipeline.errors import BlockedAddress, FetchError, TransientError, TransientFetchError
from pipeline.fetcher import USER_AGENT, Fetcher
from pipeline.guard import HostPolicy, system_resolve
from sheetbatch.sites import SiteServer
from tests.support.sites import fake_resolve


def reason(exc: pytest.ExceptionInfo[FetchError]) -> str:
    return exc.value.reason


def test_fetches_a_page(fetcher: Fetcher, site_server: SiteServer) -> None:
    page = fetcher.get(site_server.url("acme"))
    assert page.status == 200
    assert page.url == site_server.url("acme")
    assert page.content_type == "text/html"
    assert "Acme Widgets" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.redirects == ()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://10.0.0.5/", "blocked private address 10.0.0.5"),
        ("http://192.168.1.1:8080/admin", "blocked private address 192.168.1.1"),
        ("https://172.16.0.1/", "blocked private address 172.16.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "blocked link-local address 169.254.169.254"),
        ("http://0.0.0.0:80/", "blocked unspecified address 0.0.0.0"),
        ("http://224.0.0.1/", "blocked multicast address 224.0.0.1"),
        ("http://240.0.0.1/", "blocked reserved address 240.0.0.1"),
        ("http://100.64.0.1/", "blocked private address 100.64.0.1"),
        ("http://[::ffff:10.0.0.5]/", "blocked private address 10.0.0.5"),
        ("http://[fd00::1]/", "blocked private address fd00::1"),
        ("http://[fe80::1]/", "blocked link-local address fe80::1"),
        ("http://intranet.test/", "blocked private address 10.0.0.5"),
        ("http://metadata.test/", "blocked link-local address 169.254.169.254"),
        ("http://mixed.test/", "blocked private address 192.168.1.10"),
    ],
)
def test_private_addresses_are_refused_before_connecting(
    fetcher: Fetcher, url: str, expected: str
) -> None:
    with pytest.raises(BlockedAddress) as info:
        fetcher.get(url)
    assert reason(info) == expected


@pytest.mark.parametrize("url", ["http://2130706433:1/", "http://0x7f.1:1/", "http://127.1:1/"])
def test_odd_spellings_of_loopback_are_refused_after_resolution(url: str) -> None:
    # The system resolver turns these numeric forms into 127.0.0.1 without any DNS traffic.
    with Fetcher(resolve=system_resolve) as strict, pytest.raises(BlockedAddress) as info:
        strict.get(url)
    assert reason(info) == "blocked loopback address 127.0.0.1"


def test_loopback_is_refused_unless_allowed(site_server: SiteServer) -> None:
    with Fetcher(resolve=fake_resolve) as strict, pytest.raises(BlockedAddress) as info:
        strict.get(site_server.url("acme"))
    assert reason(info) == "blocked loopback address 127.0.0.1"


def test_a_name_resolving_to_loopback_is_refused_unless_allowed(site_server: SiteServer) -> None:
    url = f"http://loopy.test:{site_server.port('acme')}/"
    with Fetcher(resolve=fake_resolve) as strict, pytest.raises(BlockedAddress) as info:
        strict.get(url)
    assert reason(info) == "blocked loopback address 127.0.0.1"
    with Fetcher(allow_hosts=["127.0.0.0/8"], resolve=fake_resolve) as by_network:
        # The OS cannot resolve loopy.test: success proves we connect to the address we vetted.
        assert "Acme" in by_network.get(url).text


def test_every_new_connection_is_vetted_again(site_server: SiteServer) -> None:
    # DNS rebinding: the same name answers loopback (allowed) first and a private address later.
    answers = iter([["127.0.0.1"], ["10.0.0.5"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    with Fetcher(allow_hosts=["127.0.0.0/8"], resolve=rebinding) as fetcher:
        assert fetcher.get(f"http://rebind.test:{site_server.port('acme')}/").status == 200
        with pytest.raises(BlockedAddress) as info:
            fetcher.get(f"http://rebind.test:{site_server.port('bluefin')}/")
    assert reason(info) == "blocked private address 10.0.0.5"


def test_allow_host_with_port_lets_only_that_port_through(site_server: SiteServer) -> None:
    allowed = site_server.port("acme")
    with Fetcher(allow_hosts=[f"127.0.0.1:{allowed}"], resolve=fake_resolve) as fetcher:
        assert fetcher.get(site_server.url("acme")).status == 200
        with pytest.raises(BlockedAddress):
            fetcher.get(site_server.url("bluefin"))


def test_allow_hosts_entries_are_validated() -> None:
    policy = HostPolicy(["127.0.0.1", "Example.TEST:8080", "[::1]:9000", "10.0.0.0/8", " "])
    assert policy.allows_name("127.0.0.1", 1)
    assert policy.allows_name("example.test", 8080)
    assert not policy.allows_name("example.test", 8081)
    assert policy.allows_name("::1", 9000)
    policy.check_address("10.1.2.3")  # inside the allowed network: no error
    with pytest.raises(BlockedAddress):
        policy.check_address("192.168.0.1")
    with pytest.raises(ValueError, match="not a network"):
        HostPolicy(["10.0.0.0/99"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("intranet", "redirect to http://10.0.0.5/admin blocked (private address)"),
        ("to-named", "redirect to http://intranet.test/ blocked (private address)"),
        (
            "to-metadata",
            "redirect to http://169.254.169.254/latest/meta-data/ blocked (link-local address)",
        ),
    ],
)
def test_redirects_are_vetted_on_every_hop(
    fetcher: Fetcher, site_server: SiteServer, path: str, expected: str
) -> None:
    with pytest.raises(BlockedAddress) as info:
        fetcher.get(site_server.url("gateway") + path)
    assert reason(info) == expected


def test_redirect_to_another_scheme_is_refused(fetcher: Fetcher, site_server: SiteServer) -> None:
    with pytest.raises(FetchError, match="unsupported URL"):
        fetcher.get(site_server.url("gateway") + "to-ftp")


def test_redirects_are_followed_up_to_the_cap(fetcher: Fetcher, site_server: SiteServer) -> None:
    base = site_server.url("gateway")
    page = fetcher.get(base + "five")
    assert page.url == base
    assert page.redirects == (base + "five", *(f"{base}five/{n}" for n in range(1, 5)))
    with pytest.raises(FetchError) as info:
        fetcher.get(base + "loop")
    assert reason(info) == "too many redirects"


def test_cross_site_redirect_is_followed(fetcher: Fetcher, site_server: SiteServer) -> None:
    page = fetcher.get(site_server.url("gateway") + "to-plain")
    assert page.url == site_server.url("plain") + "about"


def test_streamed_page_over_2_mb_is_cut_off(fetcher: Fetcher, site_server: SiteServer) -> None:
    with pytest.raises(FetchError) as info:
        fetcher.get(site_server.url("gateway") + "huge")
    assert reason(info) == "page too large (> 2 MB)"
    assert not isinstance(info.value, TransientError)


def test_declared_length_over_the_cap_is_refused_early(site_server: SiteServer) -> None:
    with (
        Fetcher(allow_hosts=site_server.allow_hosts, max_bytes=50) as small,
        pytest.raises(FetchError) as info,
    ):
        small.get(site_server.url("acme"))
    assert reason(info) == "page too large (> 50 bytes)"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("brochure.pdf", "not HTML (application/pdf)"), ("feed", "not HTML (application/rss+xml)")],
)
def test_only_html_is_accepted_for_pages(
    fetcher: Fetcher, site_server: SiteServer, path: str, expected: str
) -> None:
    with pytest.raises(FetchError) as info:
        fetcher.get(site_server.url("gateway") + path)
    assert reason(info) == expected
    page = fetcher.get(site_server.url("gateway") + path, accept_html_only=False)
    assert page.content_type != "text/html"


def test_robots_txt_is_fetched_as_text(fetcher: Fetcher, site_server: SiteServer) -> None:
    page = fetcher.get(site_server.url("gateway") + "robots.txt", accept_html_only=False)
    assert page.content_type == "text/plain"
    assert "Disallow: /private" in page.text


@pytest.mark.parametrize(
    ("path", "expected", "transient"),
    [("missing", "HTTP 404", False), ("gone", "HTTP 410", False), ("broken", "HTTP 503", True)],
)
def test_http_errors(
    fetcher: Fetcher, site_server: SiteServer, path: str, expected: str, transient: bool
) -> None:
    with pytest.raises(FetchError) as info:
        fetcher.get(site_server.url("gateway") + path)
    assert reason(info) == expected
    assert isinstance(info.value, TransientFetchError) is transient


def test_slow_page_times_out_as_transient(fetcher: Fetcher, site_server: SiteServer) -> None:
    # The page takes 60 s; the timeout is 0.5 s. No timing assertion beyond that margin.
    with pytest.raises(TransientFetchError) as info:
        fetcher.get(site_server.url("gateway") + "slow", timeout=0.5)
    assert reason(info) == "timed out"


def test_dead_port_is_connection_refused(fetcher: Fetcher, site_server: SiteServer) -> None:
    with pytest.raises(FetchError) as info:
        fetcher.get(site_server.dead_url)
    assert reason(info) == "connection refused"
    assert not isinstance(info.value, TransientError)


def test_unknown_host(fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as info:
        fetcher.get("http://nowhere.test/")
    assert reason(info) == "unknown host nowhere.test"


def test_charset_from_meta_is_honoured(fetcher: Fetcher, site_server: SiteServer) -> None:
    page = fetcher.get(site_server.url("gateway") + "latin1.html")
    assert "Café Müller" in page.text
    assert "Grüße" in page.text


def test_at_most_two_concurrent_requests_per_host(site_server: SiteServer) -> None:
    # A dedicated server: the peak counter must only see this test's requests.
    with (
        SiteServer(sites=[site_server.sites["gateway"]]) as server,
        Fetcher(allow_hosts=server.allow_hosts, per_host=2) as fetcher,
    ):
        errors: list[BaseException] = []

        def fetch() -> None:
            try:
                fetcher.get(server.url("gateway") + "pause", timeout=30)
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert server.hits("gateway", "/pause") == 8
        assert 1 <= server.peak_concurrency("gateway") <= 2


def test_robots_rules_apply_to_our_user_agent(fetcher: Fetcher, site_server: SiteServer) -> None:
    base = site_server.url("gateway")
    assert fetcher.can_fetch(base + "about")
    # The group for "sheetbatch" is the one that applies, so "*" rules do not.
    assert not fetcher.can_fetch(base + "no-sheetbatch/page")
    assert fetcher.can_fetch(base + "private")
    assert USER_AGENT.startswith("sheetbatch/")


def test_robots_txt_is_fetched_once_per_site_even_concurrently(site_server: SiteServer) -> None:
    with (
        SiteServer(sites=[site_server.sites["dunmore"]]) as server,
        Fetcher(allow_hosts=server.allow_hosts) as fetcher,
    ):
        base = server.url("dunmore")
        results: list[bool] = []
        threads = [
            threading.Thread(target=lambda: results.append(fetcher.can_fetch(base + "team")))
            for _ in range(10)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [False] * 10
        assert fetcher.can_fetch(base + "about")
        assert server.hits("dunmore", "/robots.txt") == 1


def test_missing_robots_txt_allows_and_unreadable_one_disallows(
    fetcher: Fetcher, site_server: SiteServer
) -> None:
    assert fetcher.can_fetch(site_server.url("bluefin") + "about-us/")  # 404: allow all
    assert not fetcher.can_fetch(site_server.url("moody") + "about")  # 503: disallow all
    assert not fetcher.can_fetch(site_server.dead_url + "about")  # unreachable: disallow all


def test_many_threads_share_one_fetcher() -> None:
    with (
        SiteServer.synthetic(12) as server,
        Fetcher(allow_hosts=server.allow_hosts) as fetcher,
    ):
        names = sorted(server.sites)
        texts: dict[str, str] = {}

        def fetch(name: str) -> None:
            texts[name] = fetcher.get(server.url(name) + "contact").text

        threads = [threading.Thread(target=fetch, args=(n,)) for n in names for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(texts) == names
        assert all(f"hello@company-{n[4:]}.test" in texts[n] for n in names)


def test_closed_fetcher_is_a_context_manager() -> None:
    with Fetcher() as fetcher:
        assert fetcher.timeout == 10.0
