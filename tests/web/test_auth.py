"""Who may use the server: bind refusal, bearer tokens, the dashboard session, CSRF, Host."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from progress import Store, open_store
from sheetbatch.config import load_settings
from sheetbatch.serve import serve_command
from sheetbatch.web import close_app, create_app, shutdown_app
from sheetbatch.web.auth import bind_refusal, is_loopback_host

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
