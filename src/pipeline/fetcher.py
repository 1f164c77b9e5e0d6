"""The fetcher: the one place untrusted sheet cells turn into network traffic.

It is a security boundary. Every TCP connection goes through `GuardedBackend` (`guard.py`),
which resolves the host itself, refuses private, loopback, link-local, multicast, unspecified
and reserved addresses (unless the host is allowed), and connects to the very address it
checked, so neither a redirect nor DNS rebinding can reach an internal service. On top of that
the fetcher caps redirects, size and time, accepts only HTML for pages, limits concurrent
requests per host and honours robots.txt for crawling.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpcore
import idna
from protego import Protego

from pipeline.bodies import content_type, decompressor, encoding_of, looks_like_html, too_large
from pipeline.errors import BlockedAddress, FetchError, TransientFetchError
from pipeline.guard import GuardedBackend, HostPolicy, Resolver, is_ip, system_resolve
from pipeline.pools import HostSlots, ShardedPool

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_PAGE_BYTES",
    "USER_AGENT",
    "Fetcher",
    "Page",
    "Resolver",
]

USER_AGENT = "sheetbatch/0.1 (+https://github.com/sheetbatch)"
ROBOTS_TOKEN = "sheetbatch"
MAX_PAGE_BYTES = 2 * 1024 * 1024
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ACCEPT_PAGE = b"text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
_ACCEPT_TEXT = b"text/plain,*/*;q=0.5"
_TIMEOUTS = ("connect", "read", "write", "pool")
# What stays as it is in a path or query: every printable ASCII character but the blank
# (existing %XX escapes included); anything else is percent-encoded as UTF-8.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_ASCII_HOST = re.compile(r"[A-Za-z0-9.-]+")


@dataclass(frozen=True)
class Page:
    """A fetched document: the final URL after redirects, status, headers and decoded text."""

    url: str
    status: int
    headers: Mapping[str, str]
    text: str
    content_type: str = ""
    redirects: tuple[str, ...] = field(default=())


class _DisallowAll:
    """Robots rules used when robots.txt could not be read (RFC 9309: assume full disallow)."""

    def can_fetch(self, url: str, user_agent: str) -> bool:
        return False


class _AllowAll:
    """Robots rules used when robots.txt does not exist (4xx)."""

    def can_fetch(self, url: str, user_agent: str) -> bool:
        return True


_RobotsRules = Protego | _DisallowAll | _AllowAll


class Fetcher:
    """Fetches pages for all worker threads, within the security rules (see the module doc).

    One instance is shared by every worker; it is thread-safe. Close it (or use it as a context
    manager) to release its connections. `verify` is True (certifi's CAs) or an `ssl.SSLContext`
    (e.g. with a corporate CA); TLS always checks the URL's host name, whatever address the
    guard connected to.
    """

    def __init__(
        self,
        *,
        allow_hosts: Sequence[str] = (),
        resolve: Resolver | None = None,
        timeout: float = 10.0,
        max_bytes: int = MAX_PAGE_BYTES,
        max_redirects: int = 5,
        per_host: int = 2,
        max_connections: int = 100,
        user_agent: str = USER_AGENT,
        robots_cache_size: int = 4096,
        verify: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_host < 1 or max_redirects < 0 or max_bytes < 1:
            raise ValueError("per_host and max_bytes must be positive, max_redirects >= 0")
        self.policy = HostPolicy(allow_hosts)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self._clock = clock
        self._slots = HostSlots(per_host)
        backend = GuardedBackend(self.policy, resolve or system_resolve)
        # No proxy settings are read from the environment: a proxy would bypass the guard.
        self._pools = ShardedPool(backend, max_connections, shards=16, verify=verify)
        self._user_agent = user_agent.encode("ascii")
        self._robots: OrderedDict[str, _RobotsRules] = OrderedDict()
        self._robots_size = robots_cache_size
        self._robots_lock = threading.Lock()
        self._robots_pending: dict[str, threading.Lock] = {}

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection; the fetcher must not be used afterwards."""
        self._pools.close()

    def get(self, url: str, *, accept_html_only: bool = True, timeout: float | None = None) -> Page:
        """Fetch `url`, following at most `max_redirects` redirects, each hop vetted.

        `timeout` (default: the fetcher's) bounds the whole call, redirects included. Raises
        `BlockedAddress`, `TransientFetchError` (timeouts, resets, 5xx, 429) or `FetchError`
        ("HTTP 404", "not HTML (application/pdf)", "page too large (> 2 MB)", ...).
        """
        deadline = self._clock() + (self.timeout if timeout is None else timeout)
        current = _clean_url(url)
        visited: list[str] = []
        for _ in range(self.max_redirects + 1):
            try:
                location, page = self._fetch_once(current, deadline, accept_html_only)
            except BlockedAddress as exc:
                if not visited:
                    raise
                # Say it was a redirect that led there, not the URL the sheet gave.
                kind = f"{exc.kind} address" if exc.kind else exc.reason
                raise BlockedAddress(f"redirect to {current} blocked ({kind})", exc.kind) from exc
            if page is not None:
                return replace(page, redirects=tuple(visited))
            visited.append(current)
            current = _clean_url(urljoin(current, location))
        raise FetchError("too many redirects")

    def _fetch_once(
        self, url: str, deadline: float, accept_html_only: bool
    ) -> tuple[str, Page | None]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        key = f"{host}:{port}"
        if not self._slots.acquire(key, max(0.0, deadline - self._clock())):
            raise TransientFetchError("timed out")
        try:
            remaining = max(0.05, deadline - self._clock())
            target = parts.path + ("?" + parts.query if parts.query else "")
            request = httpcore.Request(
                "GET",
                httpcore.URL(scheme=parts.scheme, host=host, port=port, target=target),
                headers=[
                    (b"Host", parts.netloc.encode("ascii")),
                    (b"User-Agent", self._user_agent),
                    (b"Accept", _ACCEPT_PAGE if accept_html_only else _ACCEPT_TEXT),
                    (b"Accept-Encoding", b"gzip, deflate"),
                ],
                extensions={"timeout": dict.fromkeys(_TIMEOUTS, remaining)},
            )
            response = self._pools.pool((parts.scheme, host, port)).handle_request(request)
            try:
                return self._read(response, url, deadline, accept_html_only)
            finally:
                response.close()
        except httpcore.TimeoutException as exc:
            raise TransientFetchError("timed out") from exc
        except (httpcore.ProtocolError, httpcore.NetworkError, httpcore.UnsupportedProtocol) as exc:
            raise _translate(exc) from exc
        finally:
            self._slots.release(key)

    def _read(
        self, response: httpcore.Response, url: str, deadline: float, accept_html_only: bool
    ) -> tuple[str, Page | None]:
        status = response.status
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in response.headers
        }
        if status in REDIRECT_STATUSES and "location" in headers:
            return headers["location"], None
        if status == 429 or status >= 500:
            raise TransientFetchError(f"HTTP {status}")
        if not 200 <= status < 300:
            raise FetchError(f"HTTP {status}")
        mime, charset = content_type(headers.get("content-type", ""))
        if accept_html_only and mime and mime not in HTML_TYPES:
            raise FetchError(f"not HTML ({mime})")
        limit = self.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(too_large(limit))
        decoder = decompressor(headers.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0
        for raw in response.iter_stream():
            # Decoded at most one byte past the cap: a small compressed body cannot
            # inflate into gigabytes here.
            chunk = raw if decoder is None else decoder.decompress(raw, limit + 1 - size)
            size += len(chunk)
            if size > limit or (decoder is not None and decoder.unconsumed_tail):
                raise FetchError(too_large(limit))
            chunks.append(chunk)
            if self._clock() > deadline:
                raise TransientFetchError("timed out")
        if decoder is not None:
            chunks.append(decoder.flush())
            size += len(chunks[-1])
            if size > limit:
                raise FetchError(too_large(limit))
        body = b"".join(chunks)
        if accept_html_only and not mime and not looks_like_html(body):
            raise FetchError("not HTML (unknown type)")
        text = body.decode(encoding_of(charset, body), errors="replace")
        logger.debug("fetched %s (%s, %d bytes)", url, status, size)
        return "", Page(url, status, headers, text, mime or "text/html")

    def can_fetch(self, url: str, *, timeout: float | None = None) -> bool:
        """Whether robots.txt lets our user agent fetch `url` (robots.txt cached per site).

        A missing robots.txt (4xx) allows everything; an unreachable one (5xx, network error,
        blocked) disallows everything, as RFC 9309 asks.
        """
        parts = urlsplit(url)
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        rules = self._cached_robots(origin)
        if rules is None:
            with self._robots_lock:
                pending = self._robots_pending.setdefault(origin, threading.Lock())
            with pending:
                rules = self._cached_robots(origin)
                if rules is None:
                    rules = self._fetch_robots(origin, timeout)
                    with self._robots_lock:
                        self._robots[origin] = rules
                        while len(self._robots) > self._robots_size:
                            self._robots.popitem(last=False)
                        self._robots_pending.pop(origin, None)
        return bool(rules.can_fetch(url, ROBOTS_TOKEN))

    def _cached_robots(self, origin: str) -> _RobotsRules | None:
        with self._robots_lock:
            rules = self._robots.get(origin)
            if rules is not None:
                self._robots.move_to_end(origin)
            return rules

    def _fetch_robots(self, origin: str, timeout: float | None) -> _RobotsRules:
        try:
            page = self.get(origin + "/robots.txt", accept_html_only=False, timeout=timeout)
        except FetchError as exc:
            if exc.reason.startswith("HTTP 4"):
                return _AllowAll()
            logger.info("robots.txt for %s unreadable (%s): not crawling", origin, exc.reason)
            return _DisallowAll()
        try:
            return Protego.parse(page.text)
        except Exception:  # a third-party parser over untrusted text: any failure disallows
            logger.warning("robots.txt for %s unparsable: not crawling", origin, exc_info=True)
            return _DisallowAll()


def _clean_url(url: str) -> str:
    """The URL as sent: http(s) only, no user info or fragment, an ASCII (IDNA) host, and
    non-ASCII or blank characters of the path and query percent-encoded as UTF-8."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise FetchError("invalid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"unsupported URL {url[:80]!r}")
    host = parts.hostname.rstrip(".")
    if is_ip(host):
        host = f"[{host}]" if ":" in host else host
    elif not host.isascii() or not _ASCII_HOST.fullmatch(host):
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise FetchError(f"invalid host name {parts.hostname[:80]!r}") from None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = quote(parts.path or "/", safe=_URL_SAFE)
    return urlunsplit((scheme, netloc, path, quote(parts.query, safe=_URL_SAFE), ""))


def _translate(exc: Exception) -> FetchError:
    """Turn an httpcore error into a `FetchError` with a short human reason."""
    causes = _causes(exc)
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return FetchError("connection refused")
    if any(isinstance(cause, ssl.SSLError) for cause in causes):
        return FetchError("TLS handshake failed")
    if any(isinstance(cause, ConnectionResetError | BrokenPipeError) for cause in causes):
        return TransientFetchError("connection reset")
    if isinstance(exc, httpcore.ConnectError):
        return FetchError("cannot connect")
    if isinstance(exc, httpcore.RemoteProtocolError):
        return TransientFetchError("connection closed by server")
    if isinstance(exc, httpcore.NetworkError):
        return TransientFetchError("connection lost")
    if isinstance(exc, httpcore.UnsupportedProtocol):
        return FetchError("invalid URL")
    return FetchError("fetch failed")


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
