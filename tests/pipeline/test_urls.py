"""Website cells to URLs: trimming, schemes, IDNA, refusals with a clear reason."""

from __future__ import annotations

import pytest

from pipeline.errors import PhaseError
from pipeline.guard import HostPolicy
from pipeline.urls import InvalidURL, normalize_url, registrable_domain, same_site


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("acme.com", "https://acme.com/"),
        ("  www.Acme.COM  ", "https://www.acme.com/"),
        ("<https://acme.com/about>", "https://acme.com/about"),
        ('"acme.com".', "https://acme.com/"),
        ("“acme.com”", "https://acme.com/"),
        ("(see acme.com)", None),
        ("acme.com/about-us;", "https://acme.com/about-us"),
        ("http://acme.com", "http://acme.com/"),
        ("HTTP://Acme.com/Path?q=1#team", "http://acme.com/Path?q=1"),
        ("https://acme.com:443/", "https://acme.com/"),
        ("http://acme.com:8080", "http://acme.com:8080/"),
        ("acme.com:8443/x", "https://acme.com:8443/x"),
        ("//cdn.acme.com/", "https://cdn.acme.com/"),
        ("https://user:secret@acme.com/", "https://acme.com/"),
        ("bücher.de", "https://xn--bcher-kva.de/"),
        ("https://BÜCHER.de/katalog", "https://xn--bcher-kva.de/katalog"),
        ("münchen.example", "https://xn--mnchen-3ya.example/"),
        ("https://xn--bcher-kva.de", "https://xn--bcher-kva.de/"),
        ("http://10.0.0.5/", "http://10.0.0.5/"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
        ("acme.co.uk.", "https://acme.co.uk/"),
    ],
)
def test_normalize_url(cell: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(InvalidURL):
            normalize_url(cell)
    else:
        assert normalize_url(cell) == expected


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("n/a", "not a URL: 'n/a'"),
        ("N/A", "not a URL: 'N/A'"),
        ("-", "not a URL: '-'"),
        ("acme", "not a URL: 'acme'"),
        ("localhost", "not a URL: 'localhost'"),
        ("acme.com, foo.com", "not a URL: 'acme.com, foo.com'"),
        ("10.1", "not a URL: '10.1'"),
        ("acme.123", "not a URL: 'acme.123'"),
        ("   ", "empty website"),
        ("''", "empty website"),
        ("ftp://files.acme.com", "unsupported scheme 'ftp'"),
        ("mailto:info@acme.com", "unsupported scheme 'mailto'"),
        ("javascript:alert(1)", "unsupported scheme 'javascript'"),
        ("https://acme..com", "invalid hostname 'acme..com'"),
        ("http://acme.com:99999/", "not a URL: 'http://acme.com:99999/'"),
    ],
)
def test_normalize_url_refuses_with_a_reason(cell: str, reason: str) -> None:
    with pytest.raises(InvalidURL) as info:
        normalize_url(cell)
    assert info.value.reason == reason
    assert isinstance(info.value, PhaseError)


@pytest.mark.parametrize(
    ("cell", "allowed", "expected"),
    [
        ("http://localhost:8080/", ["localhost:8080"], "http://localhost:8080/"),
        ("http://intranet:8080/wiki", ["intranet:8080"], "http://intranet:8080/wiki"),
        ("http://Intranet/", ["intranet"], "http://intranet/"),
        ("intranet", ["intranet"], "https://intranet/"),
        ("http://localhost:8080/", [], None),
        ("http://localhost:9090/", ["localhost:8080"], None),
        ("http://intranet:8080/", ["intranet.corp"], None),
        ("n/a", ["n"], "https://n/a"),  # allow-listed, so it is a URL; a bare word is not:
        ("none", ["intranet"], None),
    ],
)
def test_single_label_hosts_are_urls_only_when_allow_listed(
    cell: str, allowed: list[str], expected: str | None
) -> None:
    policy = HostPolicy(allowed)
    if expected is None:
        with pytest.raises(InvalidURL, match="not a URL"):
            normalize_url(cell, local_name=policy.allows_name)
    else:
        assert normalize_url(cell, local_name=policy.allows_name) == expected
    with pytest.raises(InvalidURL, match="not a URL"):
        normalize_url(cell)  # without an allow list a single label is never a website


def test_long_junk_is_shortened_in_the_reason() -> None:
    with pytest.raises(InvalidURL) as info:
        normalize_url("please see our brochure " * 10)
    assert len(info.value.reason) < 80


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("acme.com", "acme.com"),
        ("www.shop.acme.com", "acme.com"),
        ("shop.acme.co.uk", "acme.co.uk"),
        ("acme.com.au", "acme.com.au"),
        ("WWW.Acme.Com.", "acme.com"),
        # Suffixes a two-label heuristic gets wrong; the Public Suffix List does not.
        ("www.acme.me.uk", "acme.me.uk"),
        ("shop.acme.gv.at", "acme.gv.at"),
        ("mail.city.kawasaki.jp", "city.kawasaki.jp"),
        ("a.b.acme.org.au", "acme.org.au"),
        ("co.uk", "co.uk"),
        # Suffixes it does not list keep the last two labels.
        ("shop.acme.test", "acme.test"),
        ("acme.test", "acme.test"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("localhost", "localhost"),
    ],
)
def test_registrable_domain(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://acme.com/", "https://www.acme.com/about", True),
        ("http://acme.com/", "https://acme.com/contact", True),
        ("https://acme.com/", "https://acme.org/", False),
        ("http://127.0.0.1:8001/", "http://127.0.0.1:8001/about", True),
        ("http://127.0.0.1:8001/", "http://127.0.0.1:8002/", False),
        ("https://acme.com/", "https://acme.com:8443/", False),
        ("https://acme.com/", "mailto:x@acme.com", False),
    ],
)
def test_same_site(a: str, b: str, same: bool) -> None:
    assert same_site(a, b) is same


def test_threads_meeting_a_cold_suffix_list_build_it_once(monkeypatch):
    """16 worker threads looking up their first host at once: one build of the list's
    lookup structure, not one per thread (each costs ~35 ms of CPU under one GIL)."""
    import threading

    import tldextract.tldextract as tx

    from pipeline.urls import PublicSuffixes

    builds = []
    real_init = tx._PublicSuffixListTLDExtractor.__init__

    def counting_init(self, *args, **kwargs):
        builds.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(tx._PublicSuffixListTLDExtractor, "__init__", counting_init)
    suffixes = PublicSuffixes()
    start = threading.Barrier(16)
    answers = []

    def lookup():
        start.wait()
        answers.append(suffixes("www.shop.acme.co.uk").suffix)

    threads = [threading.Thread(target=lookup) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["co.uk"] * 16
    assert len(builds) == 1
