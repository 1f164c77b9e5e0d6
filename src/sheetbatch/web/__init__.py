"""The web app: REST API, Server-Sent Events and the dashboard, built by `create_app`.

Nothing happens at import. `create_app` opens (or takes) the store and wires the parts;
threads start lazily (the stream hub with the first stream, a batch with its submission).
`shutdown_app` stops it in order: batches cancelled and flushed, then streams closed, then
the store closed.
"""

from __future__ import annotations

import io
import logging
import random
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, jsonify, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from progress import Store
from sheetbatch.config import Settings, load_settings
from sheetbatch.service import store_for
from sheetbatch.web import error_map
from sheetbatch.web.auth import Guard
from sheetbatch.web.context import EXTENSION, WebContext, web_context
from sheetbatch.web.errors import ApiError, TooLarge
from sheetbatch.web.metrics import Metrics
from sheetbatch.web.ratelimit import FailureLimiter
from sheetbatch.web.runner import BatchRunner
from sheetbatch.web.sessions import SessionStore
from sheetbatch.web.sheets import SheetPolicy
from sheetbatch.web.shortcut import StreamShortcut
from sheetbatch.web.streams import StreamHub

log = logging.getLogger(__name__)

__all__ = ["close_app", "create_app", "shutdown_app", "web_context"]

_JSON_PREFIXES = ("/api/", "/events/", "/healthz", "/metrics")
FEED_POLL = 0.02  # seconds between the log feed's reads of the head written by workers


def create_app(
    config: Settings | None = None,
    *,
    store: Store | None = None,
    watchdog_seconds: float = 30.0,
    retry_ms: int = 2000,
    retry_spread: float = 0.5,
    rng: random.Random | None = None,
) -> Flask:
    """The Flask app for `config` (loaded from files and environment when None).

    With `store` given the app uses it and leaves closing it to the caller; otherwise it
    opens the store the settings name and `shutdown_app` closes it. Each stream's `retry:`
    is `retry_ms` moved by up to `retry_spread` of it either way, drawn from `rng`.
    """
    settings = config if config is not None else load_settings()
    owns_store = store is None
    # Batches commit in worker processes: the feed learns of their events by polling the
    # log head, so poll often (one indexed one-row read each time).
    the_store = store if store is not None else store_for(settings, poll_interval=FEED_POLL)
    sessions = (
        SessionStore(the_store, settings.api_token, hours=settings.session_hours)
        if settings.api_token
        else None
    )
    app = Flask(__name__)
    app.config.update(
        # Flask signs nothing we rely on (sessions are ours, in the store); a random key anyway.
        SECRET_KEY=sessions.secret if sessions is not None else secrets.token_bytes(32),
        MAX_CONTENT_LENGTH=1_000_000,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # `/static//app.js` must not be redirected to an absolute URL built from the Host header.
    app.url_map.merge_slashes = False
    metrics = Metrics()
    hub = StreamHub(the_store)
    runner = BatchRunner(the_store, settings, on_flush=metrics.observe_flush)
    metrics.stream_stats = lambda: (hub.open_streams, hub.opened_total)
    metrics.running_here = lambda: len(runner.active())
    context = WebContext(
        settings=settings,
        store=the_store,
        hub=hub,
        runner=runner,
        metrics=metrics,
        guard=Guard(
            settings.api_token,
            settings.host,
            sessions=sessions,
            limiter=FailureLimiter(),
            trusted_proxies=settings.trusted_proxies,
            public_url=settings.public_url,
        ),
        sheets=SheetPolicy(settings.sheet_dirs),
        owns_store=owns_store,
        watchdog_seconds=watchdog_seconds,
        retry_ms=retry_ms,
        retry_spread=retry_spread,
        rng=rng or random.Random(),
    )
    app.extensions[EXTENSION] = context

    from sheetbatch.web import api, dashboard, events, notifications, ops, schedules

    app.register_blueprint(api.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(schedules.bp)

    @app.before_request
    def _guard() -> Any:
        moved = request.routing_exception
        if isinstance(moved, RequestRedirect):
            # Werkzeug builds these from the Host header (`Location: http://evil.example/…`):
            # answer the path alone. (Flask never passes them to error handlers.)
            target = urlsplit(moved.new_url)
            return redirect(target.path + (f"?{target.query}" if target.query else ""), moved.code)
        context.guard.check(request)
        _bound_chunked_body()
        return None

    @app.after_request
    def _no_store(response: Response) -> Response:
        if request.path.startswith(("/api/", "/metrics", "/healthz")):
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                "form-action 'self'; base-uri 'none'",
            )
        return response

    # Streams that plainly open are answered before Flask (a reconnect storm costs less).
    app.wsgi_app = StreamShortcut(app.wsgi_app, context)  # type: ignore[method-assign]

    app.register_error_handler(ApiError, _api_error)
    # The library's exceptions (unknown ids, a busy batch, a sheet that cannot be used ...)
    # answer through the one map; views hold no try/except of their own.
    error_map.install(app, _api_error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if not request.path.startswith(_JSON_PREFIXES):
            return exc
        body = {
            "error": exc.description or exc.name,
            "code": exc.name.lower().replace(" ", "_"),
            "field": None,
        }
        return jsonify(body), exc.code or 500

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Any:
        # The request's boundary: log the traceback, answer a short JSON error.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not request.path.startswith(_JSON_PREFIXES):
            return Response("internal error; see the server log", status=500, mimetype="text/plain")
        body = {"error": "internal error; see the server log", "code": "internal", "field": None}
        return jsonify(body), 500

    return app


def _api_error(exc: ApiError) -> tuple[Response, int, dict[str, str]]:
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="sheetbatch"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return jsonify(exc.body()), exc.status, headers


def _bound_chunked_body() -> None:
    """A chunked body (no Content-Length) over MAX_CONTENT_LENGTH is a 413, as a sized one is.

    Werkzeug only cuts such a stream at the limit, and the truncated text then fails as
    "bad JSON"; so the body is read here, up to one byte past the limit, before any view
    reads it.
    """
    environ = request.environ
    if environ.get("CONTENT_LENGTH") or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", ""):
        return
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    data = environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes", field="body")
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def shutdown_app(app: Flask, *, timeout: float = 25.0) -> bool:
    """Stop the app's work: cancel and drain its batches (statuses flushed), then end every
    stream. True when every batch ended within `timeout`. The store stays open for
    requests still in flight; `close_app` closes it."""
    context = web_context(app)
    clean = context.runner.shutdown(timeout)
    context.hub.close()
    return clean


def close_app(app: Flask) -> None:
    """Close the store the app opened (a store passed to `create_app` stays open)."""
    context = web_context(app)
    context.hub.close()
    if context.owns_store:
        context.store.close()
