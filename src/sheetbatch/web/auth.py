"""Who may talk to the server: binding rules, bearer tokens, the dashboard session, CSRF.

- Without `SHEETBATCH_API_TOKEN` the server only binds to loopback (`bind_refusal`) and only
  answers requests whose `Host` is a loopback name or the bound address, so a web page
  cannot reach it through DNS rebinding. A token that is set must be strong (`token_weakness`).
- With a token, `/api/*`, `/events/*` and `/metrics` need `Authorization: Bearer <token>`
  or the dashboard's session cookie (EventSource cannot send headers), set by signing in
  with the token at `/login`. Sessions live in the store (`sessions.py`): revocable,
  expiring, never derived from the token; the cookie is `Secure` when the server is reached
  over https (`[server] public_url`, or `X-Forwarded-Proto` from a trusted proxy).
- Failed authentications are limited per client address (`ratelimit.py`): then 429.
- Every mutating request is refused when the browser says it comes from another site
  (`Sec-Fetch-Site`, `Origin`); a mutating request authenticated by the session cookie must
  also carry the session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Request, g
from werkzeug.http import parse_cookie
from werkzeug.sansio.utils import get_host

from sheetbatch.web.errors import Forbidden, TooManyRequests, Unauthorized
from sheetbatch.web.offload import offload
from sheetbatch.web.ratelimit import FailureLimiter
from sheetbatch.web.sessions import Session, SessionStore

log = logging.getLogger(__name__)

CSRF_HEADER = "X-CSRF-Token"
COOKIE = "sheetbatch_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROTECTED_PREFIXES = ("/api/", "/events/", "/metrics")
PUBLIC_PATHS = frozenset({"/api/openapi.json"})
MIN_TOKEN_LENGTH = 16
GENERATE_TOKEN = (
    'export SHEETBATCH_API_TOKEN=$(python -c "import secrets; print(secrets.token_urlsafe(32))")'
)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback_host(host: str) -> bool:
    """Whether binding to `host` keeps the server reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def token_weakness(token: str) -> str | None:
    """Why `token` is too weak to guard the server; None when it will do.

    At least 16 characters, no whitespace, at least 8 different characters from at least
    two kinds (lower case, upper case, digits, others).
    """
    if token != token.strip() or any(c.isspace() for c in token):
        return "it contains whitespace"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"it has {len(token)} characters; use at least {MIN_TOKEN_LENGTH}"
    kinds = sum(
        any(test(c) for c in token)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if len(set(token)) < 8 or kinds < 2:
        return "it has too little variety (use letters, digits and symbols at random)"
    return None


def bind_refusal(host: str, token: str) -> str | None:
    """Why the server must not start on `host` with this token; None when it may."""
    if token:
        weakness = token_weakness(token)
        if weakness is not None:
            return (
                f"SHEETBATCH_API_TOKEN is too weak: {weakness}; generate one with "
                f"`{GENERATE_TOKEN}`"
            )
        return None
    if is_loopback_host(host):
        return None
    return (
        f"refusing to listen on {host}: binding beyond loopback exposes the API (start "
        "batches, read every result) to the network, so it needs a token; set "
        f"SHEETBATCH_API_TOKEN (e.g. `{GENERATE_TOKEN}`) or use --host 127.0.0.1"
    )


def token_matches(token: str, offered: str) -> bool:
    """Constant-time comparison of an offered token (or CSRF token), whatever its characters."""
    return hmac.compare_digest(token.encode("utf-8", "replace"), offered.encode("utf-8", "replace"))


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _networks(entries: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"[server] trusted_proxies: not an IP or CIDR: {entry!r}") from exc
    return out


class Guard:
    """The checks made before every request, configured once per app."""

    def __init__(
        self,
        token: str,
        bind_host: str,
        *,
        sessions: SessionStore | None = None,
        limiter: FailureLimiter | None = None,
        trusted_proxies: Sequence[str] = (),
        public_url: str = "",
    ) -> None:
        self.token = token
        self.bind_host = bind_host.strip().strip("[]").lower()
        self.sessions = sessions
        self.limiter = limiter or FailureLimiter()
        self.trusted = _networks(trusted_proxies)
        self.public_https = public_url.lower().startswith("https://")

    @property
    def required(self) -> bool:
        """Whether requests must authenticate (a token is set)."""
        return bool(self.token)

    # ------------------------------------------------------------------ the client
    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def client(self, request: Request) -> str:
        """The client's address: the peer, or the last untrusted X-Forwarded-For hop when
        the peer is a trusted proxy."""
        return self._client_of(request.environ)

    def _client_of(self, environ: Mapping[str, Any]) -> str:
        peer = environ.get("REMOTE_ADDR") or "unknown"
        if not self._trusted(peer):
            return str(peer)
        forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", ""))
        hops = [h.strip() for h in forwarded.split(",")]
        for hop in reversed([h for h in hops if h]):
            if not self._trusted(hop):
                return hop[:64]
        return str(peer)

    def https(self, request: Request) -> bool:
        """Whether the browser reached us over https (cookies are then `Secure`)."""
        if self.public_https or request.scheme == "https":
            return True
        peer = request.environ.get("REMOTE_ADDR") or ""
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return self._trusted(peer) and proto == "https"

    def _refuse_if_limited(self, request: Request, field: str) -> None:
        wait = self.limiter.retry_after(self.client(request))
        if wait is not None:
            raise TooManyRequests(
                f"too many failed authentications from this address; try again in {wait} s",
                retry_after=wait,
                field=field,
            )

    def _failed(self, request: Request, what: str) -> int | None:
        return self.limiter.failed(self.client(request), what)

    # ------------------------------------------------------------------ the session
    def session(self, request: Request) -> Session | None:
        """The request's live dashboard session, if its cookie names one."""
        if not self.required or self.sessions is None:
            return None
        if "session" not in g:
            cookie = request.cookies.get(COOKIE, "")
            g.session = self.sessions.find(cookie) if cookie else None
        found: Session | None = g.session
        return found

    def signed_in(self, request: Request) -> bool:
        """Whether the request carries a live dashboard session."""
        return self.session(request) is not None

    def sign_in(self, request: Request, offered: str) -> tuple[str, Session] | None:
        """A new session (cookie value, session) when `offered` is the token; None when it
        is not. Raises TooManyRequests for an address that failed too often."""
        if not self.required or self.sessions is None:
            return None
        self._refuse_if_limited(request, "token")
        if not token_matches(self.token, offered):
            wait = self._failed(request, "sign-in")
            if wait is not None:
                raise TooManyRequests(
                    f"too many failed sign-ins from this address; try again in {wait} s",
                    retry_after=wait,
                    field="token",
                )
            return None
        return offload(self.sessions.create, self.client(request))

    def csrf_token(self, request: Request) -> str:
        """The session's CSRF token (empty without a session)."""
        session = self.session(request)
        return session.csrf if session is not None else ""

    # ------------------------------------------------------------------ checks
    def check_host(self, request: Request) -> None:
        """Without a token, answer only loopback Host names (no DNS rebinding)."""
        if self.required:
            return
        name = _host_name(request.host or "")
        if is_loopback_host(name) or name == self.bind_host:
            return
        raise Forbidden(f"Host {request.host!r} is not served; use http://127.0.0.1", field="Host")

    def check_same_site(self, request: Request) -> None:
        """Refuse a mutating request a browser made on behalf of another site."""
        if request.method in SAFE_METHODS:
            return
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        if site in ("cross-site", "same-site"):
            raise Forbidden("cross-site request refused", field="Origin")
        origin = request.headers.get("Origin")
        if origin is None:
            return
        parts = urlsplit(origin)
        if origin == "null" or parts.netloc.lower() != (request.host or "").lower():
            raise Forbidden("cross-origin request refused", field="Origin")

    def authenticate(self, request: Request) -> None:
        """Require the bearer token or a signed-in session on protected paths."""
        g.auth = "open"
        if not self.required:
            return
        path = request.path
        if path in PUBLIC_PATHS or not path.startswith(PROTECTED_PREFIXES):
            return
        header = request.headers.get("Authorization", "")
        scheme, _, offered = header.partition(" ")
        if scheme.lower() == "bearer" and offered:
            self._refuse_if_limited(request, "Authorization")
            if token_matches(self.token, offered.strip()):
                g.auth = "bearer"
                return
            wait = self._failed(request, "bearer token")
            if wait is not None:
                raise TooManyRequests(
                    f"too many failed authentications from this address; try again in {wait} s",
                    retry_after=wait,
                    field="Authorization",
                )
            raise Unauthorized("invalid bearer token", field="Authorization")
        session = self.session(request)
        if session is not None:
            g.auth = "session"
            if request.method not in SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                if not sent or not token_matches(session.csrf, sent):
                    raise Forbidden("missing or wrong CSRF token", field=CSRF_HEADER)
            return
        raise Unauthorized(
            "authentication required: send Authorization: Bearer <SHEETBATCH_API_TOKEN> "
            "or sign in at /login",
            field="Authorization",
        )

    def passes(self, environ: Mapping[str, Any]) -> tuple[bool, Session | None]:
        """Whether a GET of a protected path passes `check` - decided from the raw WSGI
        environ, without a Flask request - and the session it is made with.

        For the streams' shortcut past Flask (`shortcut.py`): False whenever `check` would
        refuse the request, or might (a wrong token, a limited address, no Host), so that
        Flask then answers it - and counts the failure - exactly as it always does.
        """
        if not self.required:
            # The Host as Flask's `request.host` reads it (werkzeug validates its characters).
            host = get_host(environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST"))
            name = _host_name(host)
            return bool(host) and (is_loopback_host(name) or name == self.bind_host), None
        scheme, _, offered = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and offered:
            if self.limiter.retry_after(self._client_of(environ)) is not None:
                return False, None
            return token_matches(self.token, offered.strip()), None
        if self.sessions is None:
            return False, None
        cookie = parse_cookie(environ.get("HTTP_COOKIE", "")).get(COOKIE, "")
        session = self.sessions.find(cookie) if cookie else None
        return session is not None, session

    def check(self, request: Request) -> None:
        """Every check, in order; raises an ApiError subclass."""
        self.check_host(request)
        self.check_same_site(request)
        self.authenticate(request)
