"""The Server-Sent Event endpoints (`/events/*`); the stream itself is `progress.sse`.

The cursor is read from the `Last-Event-ID` header first (a browser reconnecting sends it,
and it is newer than the `?last_event_id=` of the URL it first opened), then the query.
Unknown ids are a 404 before any stream starts; the stream's subscription is taken when
the body starts, and released however it ends.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

from flask import Blueprint, Response, request

from progress.sse import (
    SSE_HEADERS,
    Scope,
    StreamPlan,
    event_stream,
    parse_cursor,
    plan_stream,
)
from sheetbatch.web.api import valid_id
from sheetbatch.web.context import SOCKET_KEY, WebContext, web_context
from sheetbatch.web.errors import BadRequest, Unavailable

log = logging.getLogger(__name__)

bp = Blueprint("events", __name__, url_prefix="/events")


def request_cursor() -> int | None:
    """The client's cursor: `Last-Event-ID`, else `?last_event_id=`; a 400 when malformed."""
    header = request.headers.get("Last-Event-ID")
    try:
        cursor = parse_cursor(header)
        if cursor is not None:
            return cursor
    except ValueError as exc:
        raise BadRequest(f"Last-Event-ID: {exc}", field="Last-Event-ID") from exc
    try:
        return parse_cursor(request.args.get("last_event_id"))
    except ValueError as exc:
        raise BadRequest(f"last_event_id: {exc}", field="last_event_id") from exc


def _body(
    context: WebContext, plan: StreamPlan, sock: socket.socket | None, session: str | None
) -> Iterator[bytes]:
    sub = context.hub.subscribe(sock, session=session)
    encoded = context.hub.encoded
    try:
        for text in event_stream(
            context.store,
            plan,
            sub,
            ping_interval=context.settings.ping_interval,
            retry_ms=context.retry_ms,
            on_sent=context.metrics.events_sent,
            formatter=context.hub.formatter,
            steps=context.hub.steps,
        ):
            yield encoded(text)
    finally:
        sub.close()


def _stream(scope: Scope) -> Response:
    context = web_context()
    if context.hub.closed:
        raise Unavailable("the server is shutting down")
    cursor = request_cursor()
    plan = plan_stream(
        context.store,
        scope,
        cursor,
        snapshot=context.hub.snapshots,
        head=context.hub.head,
        finished=context.hub.finished,
        compacted=context.hub.compacted,
    )
    return stream_response(context, plan)


def stream_response(context: WebContext, plan: StreamPlan) -> Response:
    """The SSE answer of a planned stream (batch, job, log or schedule): it ends when its
    client leaves, the server stops, or the dashboard session it was opened with ends."""
    # Set by `sheetbatch serve`'s request handler: gevent's socket (socket.socket once patched).
    sock = request.environ.get(SOCKET_KEY)
    session = context.guard.session(request)
    body = _body(
        context,
        plan,
        sock if hasattr(sock, "recv") else None,
        session.key if session is not None else None,
    )
    return Response(body, headers=dict(SSE_HEADERS))


@bp.get("/progress/<job_id>")
def job_events(job_id: str) -> Response:
    """One job's events; ends with `end` after its terminal state."""
    return _stream(Scope(job_id=valid_id(job_id, "job_id")))


@bp.get("/batches/<batch_id>")
def batch_events(batch_id: str) -> Response:
    """One batch's events; ends with `end` after `batch_finished`."""
    return _stream(Scope(batch_id=valid_id(batch_id, "batch_id")))


@bp.get("/progress")
def all_events() -> Response:
    """Every event of the log; never ends by itself."""
    return _stream(Scope())
