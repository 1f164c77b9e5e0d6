"""Who may use the server: bind refusal, bearer tokens, the dashboard session, CSRF, Host."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from progress import Store, open_store
from progress import schema as t
from sheetbatch.config import load_settings
from sheetbatch.serve import serve_command
from sheetbatch.web import close_app, create_app, shutdown_app
from sheetbatch.web.auth import bind_refusal, is_loopback_host
from sheetbatch.web.ratelimit import FailureLimiter
from sheetbatch.web.sessions import SessionStore

TOKEN = "s3cret-token-for-tests-0123456789"


def make_app(tmp_path: Path, token: str, host: str = "127.0.0.1") -> tuple[Flask, Store]:
    store = open_store(f"sqlite:///{tmp_path / 'auth.db'}")
    settings = load_settings(
        config_files=[], environ={}, overrides={"api_token": token or None, "host": host}
    )
    return create_app(settings, store=store), store


@pytest.fixture
def token_app(tmp_path: Path) -> Iterator[Flask]:
    app, store = make_app(tmp_path, TOKEN, host="0.0.0.0")
    yield app
    shutdown_app(app, timeout=5)
    close_app(app)
    store.close()


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[Flask]:
    app, store = make_app(tmp_path, "")
    yield app
    shutdown_app(app, timeout=5)
    close_app(app)
    store.close()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
    assert (bind_refusal(host, "") is None) is loopback
    assert bind_refusal(host, TOKEN) is None


def test_serve_refuses_to_bind_beyond_loopback_without_a_token() -> None:
    result = CliRunner().invoke(
        serve_command, ["--host", "0.0.0.0"], env={"SHEETBATCH_API_TOKEN": ""}
    )
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output
    assert "SHEETBATCH_API_TOKEN" in result.output


def test_without_a_token_only_loopback_host_names_are_answered(open_app: Flask) -> None:
    api = open_app.test_client()
    assert api.get("/api/batches", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert api.get("/api/batches", headers={"Host": "localhost"}).status_code == 200
    rebound = api.get("/api/batches", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 403 and rebound.get_json()["field"] == "Host"


def test_cross_site_writes_are_refused_even_without_a_token(open_app: Flask) -> None:
    api = open_app.test_client()
    evil = api.post("/api/batches", json={"sheet": "x.csv"}, headers={"Origin": "http://evil.test"})
    assert evil.status_code == 403 and evil.get_json()["field"] == "Origin"
    fetched = api.post("/api/batches/b-1/cancel", headers={"Sec-Fetch-Site": "cross-site"})
    assert fetched.status_code == 403
    same = api.post("/api/batches/b-1/cancel", headers={"Origin": "http://localhost"})
    assert same.status_code == 404  # passed the checks; the batch is unknown
    assert api.post("/api/batches/b-1/cancel").status_code == 404  # scripts send no Origin


def test_a_token_protects_api_events_and_metrics(token_app: Flask) -> None:
    api = token_app.test_client()
    for path in ("/api/batches", "/api/progress/current", "/events/progress", "/metrics"):
        answer = api.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = api.get("/api/batches", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = api.get("/api/batches", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    # Probes and the API description stay open; the dashboard asks to sign in.
    assert api.get("/healthz").status_code == 200
    assert api.get("/api/openapi.json").status_code == 200
    page = api.get("/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_bearer_writes_need_no_csrf_token(token_app: Flask) -> None:
    api = token_app.test_client()
    answer = api.post("/api/batches/b-1/cancel", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 404


def _sign_in(api: FlaskClient) -> str:
    refused = api.post("/login", data={"token": "wrong", "next": "/"})
    assert refused.status_code == 401
    answer = api.post("/login", data={"token": TOKEN, "next": "/batches/b-1"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/batches/b-1"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = api.get("/").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match is not None
    return match.group(1)


def test_the_dashboard_signs_in_once_and_uses_its_session_with_csrf(token_app: Flask) -> None:
    api = token_app.test_client()
    csrf = _sign_in(api)
    assert api.get("/api/batches").status_code == 200  # the cookie is enough to read
    with api.get("/events/progress") as stream:  # EventSource sends the cookie, not headers
        assert stream.status_code == 200
    no_csrf = api.post("/api/batches/b-1/cancel")
    assert no_csrf.status_code == 403 and no_csrf.get_json()["field"] == "X-CSRF-Token"
    wrong = api.post("/api/batches/b-1/cancel", headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    right = api.post("/api/batches/b-1/cancel", headers={"X-CSRF-Token": csrf})
    assert right.status_code == 404
    assert api.post("/logout", data={"csrf": "guess"}).status_code == 403
    assert api.post("/logout", data={"csrf": csrf}).status_code == 302
    assert api.get("/api/batches").status_code == 401


def test_sign_in_never_redirects_off_site(token_app: Flask) -> None:
    api = token_app.test_client()
    for target in ("//evil.test/", "http://evil.test/", "\\\\evil.test"):
        answer = api.post("/login", data={"token": TOKEN, "next": target})
        assert answer.headers["Location"] == "/"


def test_a_new_token_ends_old_sessions(tmp_path: Path) -> None:
    app, store = make_app(tmp_path, TOKEN, host="0.0.0.0")
    api = app.test_client()
    _sign_in(api)
    cookie = api.get_cookie("sheetbatch_session")
    assert cookie is not None
    shutdown_app(app)
    close_app(app)
    (tmp_path / "x").mkdir()  # a store is created only in a directory that exists
    other, other_store = make_app(tmp_path / "x", TOKEN + "-rotated", host="0.0.0.0")
    other_api = other.test_client()
    other_api.set_cookie("sheetbatch_session", cookie.value)
    assert other_api.get("/api/batches").status_code == 401
    shutdown_app(other)
    close_app(other)
    store.close()
    other_store.close()


# ---------------------------------------------------------------------- issue 9, section 2
@pytest.mark.parametrize(
    ("token", "why"),
    [
        (" ", "whitespace"),
        ("   padded-token-with-spaces  ", "whitespace"),
        ("secret", "6 characters"),
        ("aaaaaaaaaaaaaaaaaaaaaaaa", "variety"),
        ("abcdefghijklmnopqrst", "variety"),
        ("passwordpassword", "variety"),
    ],
)
def test_weak_tokens_are_refused_with_the_reason_and_a_way_to_make_one(
    token: str, why: str
) -> None:
    for host in ("127.0.0.1", "0.0.0.0"):
        refusal = bind_refusal(host, token)
        assert refusal is not None and why in refusal
        assert "secrets.token_urlsafe(32)" in refusal
    result = CliRunner().invoke(
        serve_command, ["--host", "0.0.0.0"], env={"SHEETBATCH_API_TOKEN": token}
    )
    assert result.exit_code == 2 and "too weak" in result.output


def test_a_strong_token_passes() -> None:
    assert bind_refusal("0.0.0.0", "Zq3-vN8_xT1pLw7Rk2sY") is None
    assert bind_refusal("0.0.0.0", TOKEN) is None


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/ /evil.example",
        "/\\evil.example",
        "//evil.example",
        "///evil.example",
        "https://evil.example/",
        "/\x00/evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_sign_in_redirects_only_to_paths_on_this_server(token_app: Flask, target: str) -> None:
    answer = token_app.test_client().post("/login", data={"token": TOKEN, "next": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"


def test_a_safe_next_is_kept_but_encoded(token_app: Flask) -> None:
    api = token_app.test_client()
    answer = api.post("/login", data={"token": TOKEN, "next": "/batches/b-1?x=é"})
    assert answer.headers["Location"] == "/batches/b-1?x=%C3%A9"
    # The tab of `/%09/evil.example` arrives percent-encoded: it stays a path here.
    answer = api.post("/login", data={"token": TOKEN, "next": "/%09/evil.example"})
    assert answer.headers["Location"] == "/%09/evil.example"


def test_logout_revokes_the_session_everywhere(token_app: Flask) -> None:
    api = token_app.test_client()
    csrf = _sign_in(api)
    cookie = api.get_cookie("sheetbatch_session")
    assert cookie is not None
    other_tab = token_app.test_client()
    other_tab.set_cookie("sheetbatch_session", cookie.value)
    assert other_tab.get("/api/batches").status_code == 200
    assert api.post("/logout", data={"csrf": csrf}).status_code == 302
    # The same cookie, kept by another tab (or stolen), no longer works.
    assert other_tab.get("/api/batches").status_code == 401
    assert other_tab.get("/").status_code == 302


def test_the_cookie_is_random_and_never_derived_from_the_token(tmp_path: Path) -> None:
    import hashlib

    app, store = make_app(tmp_path, TOKEN, host="0.0.0.0")
    try:
        values = []
        for _ in range(2):
            api = app.test_client()
            _sign_in(api)
            cookie = api.get_cookie("sheetbatch_session")
            assert cookie is not None
            values.append(cookie.value)
        assert values[0] != values[1]
        fingerprint = hashlib.sha256(b"sheetbatch:" + TOKEN.encode()).hexdigest()[:32]
        assert all(fingerprint not in v and TOKEN not in v for v in values)
        # The store holds neither the cookie nor anything that opens a session by itself.
        with store.engine.connect() as conn:
            keys = [row.key for row in conn.execute(select(t.sessions))]
            secret = conn.execute(
                select(t.meta.c.value).where(t.meta.c.key == "web_session_secret")
            ).scalar_one()
        assert len(keys) == 2 and not set(keys) & set(values)
        assert len(secret) == 64 and secret != hashlib.sha256(TOKEN.encode()).hexdigest()
    finally:
        shutdown_app(app)
        close_app(app)
        store.close()


def test_sessions_expire_after_session_hours(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    now = [1000.0]
    try:
        sessions = SessionStore(store, TOKEN, hours=12, clock=lambda: now[0])
        cookie, session = sessions.create("127.0.0.1")
        assert sessions.find(cookie) == session
        now[0] += 12 * 3600 - 1
        assert sessions.find(cookie) is not None
        now[0] += 2
        assert sessions.find(cookie) is None
        assert SessionStore(store, TOKEN + "-new", clock=lambda: 1000.0).find(cookie) is None
        assert sessions.find("not-a-cookie") is None
    finally:
        store.close()


def _proxy_app(tmp_path: Path, **overrides: Any) -> tuple[Flask, Store]:
    store = open_store(f"sqlite:///{tmp_path / 'proxy.db'}")
    settings = load_settings(
        config_files=[],
        environ={},
        overrides={"api_token": TOKEN, "host": "0.0.0.0", **overrides},
    )
    return create_app(settings, store=store), store


@pytest.mark.parametrize(
    ("overrides", "headers", "secure"),
    [
        ({}, {}, False),
        ({"public_url": "https://sheets.example.org/"}, {}, True),
        ({"trusted_proxies": ("127.0.0.1",)}, {"X-Forwarded-Proto": "https"}, True),
        ({}, {"X-Forwarded-Proto": "https"}, False),  # an untrusted client cannot say so
    ],
)
def test_cookies_are_secure_behind_https(
    tmp_path: Path, overrides: dict[str, Any], headers: dict[str, str], secure: bool
) -> None:
    app, store = _proxy_app(tmp_path, **overrides)
    try:
        answer = app.test_client().post("/login", data={"token": TOKEN}, headers=headers)
        assert answer.status_code == 302
        assert ("Secure" in answer.headers["Set-Cookie"]) is secure
    finally:
        shutdown_app(app)
        close_app(app)
        store.close()


def test_failed_authentications_are_limited_per_address_and_logged_in_aggregate(
    token_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    attacker = token_app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    with caplog.at_level(logging.WARNING, logger="sheetbatch.web"):
        answers = [
            attacker.get("/api/batches", headers={"Authorization": f"Bearer wrong-{i}"})
            for i in range(500)
        ]
    codes = [a.status_code for a in answers]
    assert codes[:9] == [401] * 9 and set(codes[9:]) == {429}
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert answers[-1].get_json()["field"] == "Authorization"
    # Blocked means blocked: the right token too, and sign-ins from that address.
    right = attacker.get("/api/batches", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 429
    login = attacker.post("/login", data={"token": TOKEN})
    assert login.status_code == 429 and "Retry-After" in login.headers
    # Another address is not affected.
    assert (
        token_app.test_client()
        .get("/api/batches", headers={"Authorization": f"Bearer {TOKEN}"})
        .status_code
        == 200
    )
    lines = [r for r in caplog.records if "203.0.113.7" in r.getMessage()]
    assert 1 <= len(lines) <= 3, [r.getMessage() for r in lines]


def test_the_limit_lifts_when_the_window_passes() -> None:
    now = [0.0]
    limiter = FailureLimiter(limit=3, window=60, clock=lambda: now[0])
    assert [limiter.failed("a", "x") for _ in range(2)] == [None, None]
    assert limiter.failed("a", "x") == 60
    assert limiter.retry_after("a") == 60 and limiter.retry_after("b") is None
    now[0] = 30.0
    assert limiter.retry_after("a") == 30
    now[0] = 60.5
    assert limiter.retry_after("a") is None


def test_failed_sign_ins_are_limited_too(token_app: Flask) -> None:
    api = token_app.test_client()
    api.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    codes = [api.post("/login", data={"token": f"no-{i}"}).status_code for i in range(12)]
    assert codes[:9] == [401] * 9 and codes[9:] == [429] * 3


def test_redirects_never_reflect_the_host_header(token_app: Flask, open_app: Flask) -> None:
    for app in (token_app, open_app):
        answer = app.test_client().get("/static//app.js", headers={"Host": "evil.example"})
        location = answer.headers.get("Location", "")
        assert "evil.example" not in location and not location.startswith("http")
