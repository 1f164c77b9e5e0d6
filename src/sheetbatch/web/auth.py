"""Who may talk to the server: binding rules, bearer tokens, the dashboard session, CSRF.

- Without `SHEETBATCH_API_TOKEN` the server only binds to loopback (`bind_refusal`) and only
  answers requests whose `Host` is a loopback name or the bound address, so a web page
  cannot reach it through DNS rebinding.
- With a token, `/api/*`, `/events/*` and `/metrics` need `Authorization: Bearer <token>`
  or the dashboard's session cookie (EventSource cannot send headers), set once by
  signing in with the token at `/login`.
- Every mutating request is refused when the browser says it comes from another site
  (`Sec-Fetch-Site`, `Origin`); a mutating request authenticated by the session cookie must
  also carry the session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from urllib.parse import urlsplit

from flask import Request, g, session

from sheetbatch.web.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROTECTED_PREFIXES = ("/api/", "/events/", "/metrics")
PUBLIC_PATHS = frozenset({"/api/openapi.json"})
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


def bind_refusal(host: str, token: str) -> str | None:
    """Why the server must not start on `host` with this token; None when it may."""
    if is_loopback_host(host) or token:
        return None
    return (
        f"refusing to listen on {host}: binding beyond loopback exposes the API (start "
        "batches, read every result) to the network, so it needs a token; set "
        "SHEETBATCH_API_TOKEN (e.g. `export SHEETBATCH_API_TOKEN=$(python -c "
        '"import secrets; print(secrets.token_urlsafe(32))")`) or use --host 127.0.0.1'
    )


def session_secret(token: str) -> bytes:
    """The cookie-signing key: derived from the token (sessions survive a restart and end
    when the token changes), random per process without one."""
    if not token:
        return secrets.token_bytes(32)
    return hmac.new(token.encode(), b"sheetbatch dashboard session", hashlib.sha256).digest()


def token_matches(token: str, offered: str) -> bool:
    """Constant-time comparison of an offered token."""
    return hmac.compare_digest(token.encode(), offered.encode())


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """The checks made before every request, configured once per app."""

    def __init__(self, token: str, bind_host: str) -> None:
        self.token = token
        self.bind_host = bind_host.strip().strip("[]").lower()

    @property
    def required(self) -> bool:
        """Whether requests must authenticate (a token is set)."""
        return bool(self.token)

    def signed_in(self) -> bool:
        """Whether the dashboard session is signed in with the current token."""
        return bool(self.required and session.get("auth") == self._fingerprint())

    def sign_in(self, offered: str) -> bool:
        """Sign the session in when `offered` is the token; a fresh CSRF token goes with it."""
        if not self.required or not token_matches(self.token, offered):
            return False
        session.clear()
        session["auth"] = self._fingerprint()
        session["csrf"] = secrets.token_urlsafe(32)
        return True

    def csrf_token(self) -> str:
        """The session's CSRF token (created on first use; empty without a token)."""
        if not self.required:
            return ""
        value = session.get("csrf")
        if not isinstance(value, str):
            value = secrets.token_urlsafe(32)
            session["csrf"] = value
        return value

    def _fingerprint(self) -> str:
        return hashlib.sha256(b"sheetbatch:" + self.token.encode()).hexdigest()[:32]

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
            if token_matches(self.token, offered.strip()):
                g.auth = "bearer"
                return
            raise Unauthorized("invalid bearer token", field="Authorization")
        if self.signed_in():
            g.auth = "session"
            if request.method not in SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                if not sent or not hmac.compare_digest(sent, self.csrf_token()):
                    raise Forbidden("missing or wrong CSRF token", field=CSRF_HEADER)
            return
        raise Unauthorized(
            "authentication required: send Authorization: Bearer <SHEETBATCH_API_TOKEN> "
            "or sign in at /login",
            field="Authorization",
        )

    def check(self, request: Request) -> None:
        """Every check, in order; raises an ApiError subclass."""
        self.check_host(request)
        self.check_same_site(request)
        self.authenticate(request)
