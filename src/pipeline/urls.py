"""Website cells to fetchable URLs, and "same site" comparisons.

Sheet cells are untrusted and messy ("  <www.Acme.com>. ", "n/a", "bücher.de"); `normalize_url`
turns them into one canonical absolute http(s) URL or refuses them with a short reason.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import threading
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna
import tldextract

from pipeline.errors import PhaseError

logger = logging.getLogger(__name__)

__all__ = [
    "InvalidURL",
    "host_of",
    "normalize_url",
    "registrable_domain",
    "same_site",
]

# Characters people paste around URLs: quotes, angle brackets, typographic quotes.
_WRAPPERS = "\"'<>`“”‘’«»[]"
_TRAILING_JUNK = ".,;:!?)]}>\"'`“”’»"
_LEADING_JUNK = "([{<\"'`“‘«"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class PublicSuffixes:
    """The Public Suffix List snapshot bundled with tldextract (never fetched: no network, no
    cache), its lookup structure built once per process.

    tldextract builds that structure on first use without a lock: every worker thread that
    met it cold built its own (16 threads, 16 builds of ~35 ms CPU each, under one GIL).
    """

    def __init__(self) -> None:
        self._extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
        self._lock = threading.Lock()
        self._ready = False

    def __call__(self, host: str) -> tldextract.tldextract.ExtractResult:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._extract("example.com")
                    self._ready = True
        return self._extract(host)


_SUFFIXES = PublicSuffixes()


class InvalidURL(PhaseError):
    """A website cell is not a usable http(s) URL; `reason` says why ("not a URL: 'n/a'")."""


def normalize_url(cell: str, *, local_name: Callable[[str, int], bool] | None = None) -> str:
    """Return the canonical absolute URL for a website cell, or raise `InvalidURL`.

    Trims surrounding junk (spaces, quotes, `<>`, trailing punctuation), adds `https://` when no
    scheme is given (an explicit `http://` is kept), lower-cases and IDNA-encodes the host, drops
    user info and the fragment, and gives an empty path a `/`. A host without a dot
    (`localhost`, `intranet`) is a URL only when `local_name(host, port)` allows it: the
    operator allow-listed that name (`--allow-host intranet:8080`).
    """
    raw = cell
    text = cell.strip()
    for _ in range(3):
        text = text.strip().strip(_WRAPPERS).lstrip(_LEADING_JUNK).rstrip(_TRAILING_JUNK)
    if not text:
        raise InvalidURL("empty website")
    if any(ch.isspace() for ch in text):
        raise InvalidURL(f"not a URL: {_show(raw)}")
    if text.startswith("//"):
        text = "https:" + text
    elif not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(?!\d)", text):
            scheme = text.split(":", 1)[0].lower()
            raise InvalidURL(f"unsupported scheme {scheme!r}")
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidURL(f"not a URL: {_show(raw)}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL(f"unsupported scheme {scheme!r}")
    effective_port = port if port is not None else _DEFAULT_PORTS[scheme]
    host = _normalize_host(parts.hostname or "", raw, local_name, effective_port)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = parts.path or "/"
    return urlunsplit(SplitResult(scheme, netloc, path, parts.query, ""))


def _show(raw: str) -> str:
    shown = raw.strip()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return repr(shown)


def _normalize_host(
    host: str, raw: str, local_name: Callable[[str, int], bool] | None, port: int
) -> str:
    host = host.rstrip(".")
    if not host:
        raise InvalidURL(f"not a URL: {_show(raw)}")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):
        # "10.1" or "1.2.3.4.5": digits that are not a valid address are never a hostname.
        raise InvalidURL(f"not a URL: {_show(raw)}")
    if "." not in host:
        if local_name is not None and _LABEL.match(host.lower()) and local_name(host, port):
            return host.lower()
        raise InvalidURL(f"not a URL: {_show(raw)}")
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise InvalidURL(f"invalid hostname {host!r}") from None
    labels = ascii_host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidURL(f"not a URL: {_show(raw)}")
    if not re.fullmatch(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}", labels[-1]):
        raise InvalidURL(f"not a URL: {_show(raw)}")
    return ascii_host


def host_of(url: str) -> str:
    """Lower-case host of an absolute URL ("" when it has none); IPv6 without brackets."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


@functools.lru_cache(maxsize=4096)  # asked for every link of every page crawled
def registrable_domain(host: str) -> str:
    """The registrable part of a host, by the Public Suffix List (tldextract's bundled copy).

    `www.shop.acme.com` -> `acme.com`; `shop.acme.co.uk` -> `acme.co.uk`; `www.acme.me.uk` ->
    `acme.me.uk`. An IP address or a single label is returned unchanged; a name under a suffix
    the list does not know (`.test`, an intranet's own) keeps its last two labels.
    """
    host = host.rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.split(".")
    parts = _SUFFIXES(host)
    if len(labels) <= 2 and not parts.suffix:
        return host
    if not parts.suffix:
        return ".".join(labels[-2:])
    if not parts.domain:
        return host  # the host is itself a public suffix ("co.uk")
    return f"{parts.domain}.{parts.suffix}"


def same_site(url_a: str, url_b: str) -> bool:
    """True when both URLs belong to the same site: same registrable domain and same port.

    The port matters because distinct ports on one host are distinct sites (each fixture site is
    served on its own 127.0.0.1 port); `http` and `https` on their default ports count as one.
    """
    try:
        a, b = urlsplit(url_a), urlsplit(url_b)
        port_a = a.port or _DEFAULT_PORTS.get(a.scheme, 0)
        port_b = b.port or _DEFAULT_PORTS.get(b.scheme, 0)
    except ValueError:
        return False
    if a.scheme not in _DEFAULT_PORTS or b.scheme not in _DEFAULT_PORTS:
        return False
    if {port_a, port_b} <= {80, 443}:
        port_a = port_b
    host_a, host_b = host_of(url_a), host_of(url_b)
    if not host_a or not host_b:
        return False
    return port_a == port_b and registrable_domain(host_a) == registrable_domain(host_b)
