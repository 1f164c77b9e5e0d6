"""Posting one webhook request, inside the fetcher's security rules.

Webhook URLs are untrusted input (API clients give them), so every connection goes through
the fetcher's SSRF guard (`pipeline.guard.GuardedBackend`): private, loopback, link-local
and multicast addresses are refused after DNS resolution unless allowed (`--allow-host`,
`[fetch] allow_hosts`). No redirect is followed, every attempt has a timeout, and at most
64 KB of the answer is read. The result is a `Response` (status or error, how long it took,
Retry-After); nothing raises.
"""

from __future__ import annotations

import email.utils
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import httpcore

from pipeline.errors import BlockedAddress, FetchError
from pipeline.guard import GuardedBackend, HostPolicy, Resolver, is_ip, system_resolve

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "sheetbatch-webhooks/0.1"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Response:
    """What one attempt got: the status (None: no answer), an error, the seconds it took,
    the Retry-After asked for (seconds), and whether the URL was refused by the guard."""

    status: int | None
    error: str | None
    duration: float
    retry_after: float | None = None
    blocked: bool = False


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from `now`."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def check_url(url: str) -> str | None:
    """Why `url` cannot be a webhook URL (None: it can)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    if parts.username or parts.password:
        return "a URL with a user name or password"
    return None


def webhook_refusal(url: str, allow_hosts: Sequence[str] = ()) -> str | None:
    """Why a webhook URL given by a user is refused now (None: it is accepted).

    An address written in the URL (or `localhost`) is vetted here already; a host name is
    resolved and vetted by the guard at every attempt (DNS may change in between).
    """
    refusal = check_url(url)
    if refusal is not None:
        return refusal
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    if not (is_ip(host) or host == "localhost"):
        return None
    try:
        HostPolicy(allow_hosts).vet(
            host, parts.port or _DEFAULT_PORTS[parts.scheme.lower()], system_resolve
        )
    except BlockedAddress as exc:
        return f"{exc.reason}; allow it with --allow-host or [fetch] allow_hosts"
    except FetchError as exc:
        return exc.reason
    return None


class WebhookClient:
    """Posts webhook requests through the SSRF guard (thread-safe; close it when done)."""

    def __init__(
        self,
        *,
        allow_hosts: Sequence[str] = (),
        timeout: float = 10.0,
        resolve: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.timeout = timeout
        self._clock = clock
        self._wall = wall
        backend = GuardedBackend(HostPolicy(allow_hosts), resolve or system_resolve)
        # No proxy is read from the environment: a proxy would bypass the guard.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            max_connections=20,
            max_keepalive_connections=4,
            keepalive_expiry=5.0,
            network_backend=backend,
        )

    def close(self) -> None:
        self._pool.close()

    def post(self, url: str, body: bytes, headers: Sequence[tuple[str, str]]) -> Response:
        """POST `body` to `url` once; never raises."""
        started = self._clock()

        def done(
            status: int | None,
            error: str | None,
            *,
            retry_after: float | None = None,
            blocked: bool = False,
        ) -> Response:
            seconds = round(self._clock() - started, 4)
            return Response(status, error, seconds, retry_after=retry_after, blocked=blocked)

        refusal = check_url(url)
        if refusal is not None:
            return done(None, refusal, blocked=True)
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORTS[scheme]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = httpcore.Request(
            "POST",
            httpcore.URL(scheme=scheme, host=host, port=port, target=target),
            headers=[
                (b"Host", parts.netloc.rsplit("@", 1)[-1].encode("idna")),
                (b"User-Agent", USER_AGENT.encode("ascii")),
                (b"Content-Type", b"application/json"),
                (b"Content-Length", str(len(body)).encode("ascii")),
                *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers),
            ],
            content=body,
            extensions={
                "timeout": dict.fromkeys(("connect", "read", "write", "pool"), self.timeout)
            },
        )
        deadline = started + self.timeout
        try:
            response = self._pool.handle_request(request)
            try:
                status = response.status
                retry_after = retry_after_seconds(_header(response, b"retry-after"), self._wall())
                size = 0
                for chunk in response.iter_stream():
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES or self._clock() > deadline:
                        break  # the answer's body says nothing we need: stop reading
            finally:
                response.close()
        except BlockedAddress as exc:
            return done(None, f"refused: {exc.reason} (allow it with --allow-host)", blocked=True)
        except FetchError as exc:
            return done(None, exc.reason)
        except httpcore.TimeoutException:
            return done(None, f"timed out after {self.timeout:g} s")
        except (httpcore.ProtocolError, httpcore.NetworkError, httpcore.UnsupportedProtocol) as exc:
            return done(None, _reason(exc))
        error = None if 200 <= status < 300 else f"HTTP {status}"
        if 300 <= status < 400:
            error = f"HTTP {status} (redirects are not followed)"
        return done(status, error, retry_after=retry_after)


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _reason(exc: BaseException) -> str:
    current: BaseException | None = exc
    seen = 0
    while current is not None and seen < 10:
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, ConnectionResetError | BrokenPipeError):
            return "connection reset"
        if isinstance(current, ssl.SSLError):
            return "TLS handshake failed"
        current = current.__cause__ or current.__context__
        seen += 1
    if isinstance(exc, httpcore.RemoteProtocolError):
        return "connection closed by the receiver"
    if isinstance(exc, httpcore.ConnectError):
        text = str(exc).lower()
        return "connection refused" if "refused" in text else "cannot connect"
    return "connection lost"
