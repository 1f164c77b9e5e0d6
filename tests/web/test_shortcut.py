"""Streams opened past Flask (`StreamShortcut`): the same answer as the Flask view, the same
authentication, and every request it does not plainly recognise left to Flask."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from progress import Store, open_store
from sheetbatch.config import load_settings
from sheetbatch.web import close_app, create_app, shutdown_app, web_context
from sheetbatch.web.shortcut import StreamShortcut
from tests.support.factory import make_batch

TOKEN = "s3cret-token-for-tests-0123456789"

Answer = tuple[str, list[tuple[str, str]], bytes]


def _app(tmp_path: Path, token: str) -> tuple[Flask, Store]:
    store = open_store(f"sqlite:///{tmp_path / 'shortcut.db'}")
    overrides: dict[str, Any] = {"api_token": token or None, "host": "0.0.0.0" if token else "::1"}
    settings = load_settings(config_files=[], environ={}, overrides=overrides)
    return create_app(settings, store=store), store


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[tuple[Flask, Store]]:
    app, store = _app(tmp_path, "")
    yield app, store
    shutdown_app(app, timeout=5)
    close_app(app)
    store.close()


@pytest.fixture
def token_app(tmp_path: Path) -> Iterator[tuple[Flask, Store]]:
    app, store = _app(tmp_path, TOKEN)
    yield app, store
    shutdown_app(app, timeout=5)
    close_app(app)
    store.close()


def _shortcut(app: Flask) -> StreamShortcut:
    shortcut = app.wsgi_app
    assert isinstance(shortcut, StreamShortcut)
    return shortcut


def _ask(wsgi: Any, path: str, **kwargs: Any) -> Answer:
    """Status, headers and the first piece of the body of one GET through `wsgi`."""
    environ = EnvironBuilder(path=path, **kwargs).get_environ()
    body, status, headers = run_wsgi_app(wsgi, environ, buffered=False)
    try:
        first = next(iter(body), b"")
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return status, list(headers.items()), first


def _both(app: Flask, path: str, **kwargs: Any) -> tuple[Answer, Answer, bool]:
    """The answer through the shortcut, Flask's own answer, and whether the shortcut served."""
    shortcut = _shortcut(app)
    before = shortcut.served
    fast = _ask(shortcut, path, **kwargs)
    served = shortcut.served > before
    return fast, _ask(shortcut.app, path, **kwargs), served


def _same_retry(answer: Answer) -> Answer:
    # Every stream has its own `retry:` (see the last test); the rest must be equal.
    status, headers, first = answer
    return status, headers, re.sub(rb"^retry: [0-9]+\n", b"retry: N\n", first)


def test_a_stream_opened_past_flask_is_answered_exactly_as_flask_answers_it(
    open_app: tuple[Flask, Store],
) -> None:
    app, store = open_app
    batch_id, job_ids = make_batch(store, 3)
    head = store.last_event_id()
    cases: list[tuple[str, dict[str, Any]]] = [
        (f"/events/batches/{batch_id}", {"headers": {"Last-Event-ID": "1"}}),
        (f"/events/batches/{batch_id}", {"query_string": "last_event_id=2"}),
        (f"/events/batches/{batch_id}", {"headers": {"Last-Event-ID": ""}}),  # a snapshot
        (f"/events/progress/{job_ids[1]}", {"headers": {"Last-Event-ID": str(head)}}),
        ("/events/progress", {"headers": {"Last-Event-ID": "0"}}),
        ("/events/progress", {}),
    ]
    for path, kwargs in cases:
        fast, flask, served = _both(app, path, **kwargs)
        assert served, (path, kwargs)
        assert _same_retry(fast) == _same_retry(flask), (path, kwargs)
        assert fast[0] == "200 OK"
        assert ("Content-Type", "text/event-stream; charset=utf-8") in fast[1]
    resumed = _ask(app.wsgi_app, f"/events/batches/{batch_id}", headers={"Last-Event-ID": "1"})
    assert resumed[2] == b": connected\n\n"


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        ("/events/batches/{batch}", {"headers": {"Last-Event-ID": "abc"}}, "400 BAD REQUEST"),
        (
            "/events/batches/{batch}",
            {"headers": {"Last-Event-ID": "\u0661\u0662"}},
            "400 BAD REQUEST",
        ),
        ("/events/batches/{batch}", {"query_string": "last_event_id=-1"}, "400 BAD REQUEST"),
        ("/events/batches/no-such-batch", {"headers": {"Last-Event-ID": "1"}}, "404 NOT FOUND"),
        ("/events/progress/no-such-job", {}, "404 NOT FOUND"),
        ("/events/batches/bad!id", {}, "400 BAD REQUEST"),
        ("/events/batches/{batch}", {"headers": {"Host": "evil.example"}}, "403 FORBIDDEN"),
        # A query it does not read: Flask opens the stream.
        ("/events/batches/{batch}", {"query_string": "last_event_id=1&x=2"}, "200 OK"),
        ("/events/batches/{batch}", {"method": "HEAD"}, "200 OK"),
    ],
)
def test_what_the_shortcut_does_not_plainly_recognise_flask_answers(
    open_app: tuple[Flask, Store], path: str, kwargs: dict[str, Any], status: str
) -> None:
    app, store = open_app
    batch_id, _ = make_batch(store, 1)
    fast, flask, served = _both(app, path.format(batch=batch_id), **kwargs)
    assert not served
    assert fast[0] == flask[0] == status
    assert fast[1] == flask[1]


def test_with_a_token_no_stream_opens_without_the_token_or_a_live_session(
    token_app: tuple[Flask, Store],
) -> None:
    app, store = token_app
    batch_id, _ = make_batch(store, 1)
    path = f"/events/batches/{batch_id}"
    cursor = {"Last-Event-ID": "1"}
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic x"}):
        fast, flask, served = _both(app, path, headers={**cursor, **headers})
        assert not served and fast[0] == flask[0] == "401 UNAUTHORIZED", headers
    unknown = {"Cookie": "sheetbatch_session=made-up"}
    fast, _, served = _both(app, path, headers={**cursor, **unknown})
    assert not served and fast[0] == "401 UNAUTHORIZED"

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    fast, flask, served = _both(app, path, headers={**cursor, **bearer})
    assert served and fast == flask and fast[0] == "200 OK"

    context = web_context(app)
    assert context.guard.sessions is not None
    cookie, session = context.guard.sessions.create("127.0.0.1")
    signed_in = {"Cookie": f"sheetbatch_session={cookie}"}
    fast, flask, served = _both(app, path, headers={**cursor, **signed_in})
    assert served and fast == flask and fast[0] == "200 OK"
    context.guard.sessions.revoke(session.key)  # signed out (here or on another server)
    fast, _, served = _both(app, path, headers={**cursor, **signed_in})
    assert not served and fast[0] == "401 UNAUTHORIZED"


def test_failed_tokens_are_counted_and_limited_as_flask_does_even_for_streams(
    token_app: tuple[Flask, Store],
) -> None:
    app, store = token_app
    batch_id, _ = make_batch(store, 1)
    path = f"/events/batches/{batch_id}"
    answers = [
        _ask(app.wsgi_app, path, headers={"Authorization": "Bearer wrong-token"})[0]
        for _ in range(12)
    ]
    assert answers[0] == "401 UNAUTHORIZED" and answers[-1] == "429 TOO MANY REQUESTS"
    # The right token from a limited address is refused too, not streamed past Flask.
    shortcut = _shortcut(app)
    before = shortcut.served
    right = _ask(app.wsgi_app, path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right[0] == "429 TOO MANY REQUESTS" and shortcut.served == before


def test_a_session_stream_opened_past_flask_ends_when_the_session_signs_out(
    token_app: tuple[Flask, Store],
) -> None:
    app, store = token_app
    batch_id, _ = make_batch(store, 1)
    context = web_context(app)
    assert context.guard.sessions is not None
    cookie, session = context.guard.sessions.create("127.0.0.1")
    environ = EnvironBuilder(
        path=f"/events/batches/{batch_id}",
        headers={
            "Last-Event-ID": str(store.last_event_id()),  # nothing to replay
            "Cookie": f"sheetbatch_session={cookie}",
        },
    ).get_environ()
    body, status, _ = run_wsgi_app(app.wsgi_app, environ, buffered=False)
    chunks = iter(body)
    assert status == "200 OK" and next(chunks) == b": connected\n\n"
    assert context.hub.end_session(session.key) == 1
    assert list(chunks) == []  # the stream ended (it would otherwise wait for news)


def test_each_stream_gets_its_own_reconnection_time_around_the_base(
    open_app: tuple[Flask, Store],
) -> None:
    app, store = open_app
    batch_id, _ = make_batch(store, 1)
    retries = set()
    for wsgi in (app.wsgi_app, _shortcut(app).app) * 10:  # past Flask and through it
        first = _ask(wsgi, f"/events/batches/{batch_id}")[2].decode()
        assert first.startswith("retry: ")
        retries.add(int(first.split("\n", 1)[0][7:]))
    assert all(1000 <= r <= 3000 for r in retries)
    assert len(retries) > 10  # not one shared value: a cut crowd comes back spread out
