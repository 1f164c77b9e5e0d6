"""The Server-Sent Event endpoints (`/events/*`); the stream itself is `progress.sse`.

The cursor is read from the `Last-Event-ID` header first (a browser reconnecting sends it,
and it is newer than the `?last_event_id=` of the URL it first opened), then the query.
Unknown ids are a 404 before any stream starts; the stream's subscription is taken when
the body starts, and released however it ends.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, request

from progress.sse import Pushed, Scope, StreamPlan, event_stream, plan_stream
from progress.sse_wire import SSE_HEADERS, parse_cursor
from progress.steps import Step
from sheetbatch.web.api import valid_id
from sheetbatch.web.context import HANDLER_KEY, SOCKET_KEY, WebContext, web_context
from sheetbatch.web.errors import BadRequest, Unavailable
from sheetbatch.web.streams import Subscription

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


def open_stream(
    context: WebContext, plan: StreamPlan, environ: Mapping[str, Any], session: str | None
) -> Iterator[bytes]:
    """The body of a planned stream (batch, job, log or schedule), as bytes to write: it
    ends when its client leaves, the server stops, or the dashboard `session` it was opened
    with ends. `environ` is the request's WSGI environ (its socket, under `sheetbatch serve`).
    """
    # Set by `sheetbatch serve`'s request handler: gevent's socket (socket.socket once patched).
    sock = environ.get(SOCKET_KEY)
    handler = environ.get(HANDLER_KEY)
    return _body(
        context,
        plan,
        sock if hasattr(sock, "recv") else None,
        session,
        None if handler is None else lambda: bool(handler.response_use_chunked),
    )


def _body(
    context: WebContext,
    plan: StreamPlan,
    sock: socket.socket | None,
    session: str | None,
    chunked: Callable[[], bool] | None,
) -> Iterator[bytes]:
    sub = context.hub.subscribe(sock, session=session, chunked=chunked)
    encoded = context.hub.encoded
    on_sent = context.metrics.events_sent
    pusher = _Pusher(sub, on_sent) if sub.can_push else None
    held = b""
    try:
        for text in event_stream(
            context.store,
            plan,
            sub,
            ping_interval=context.settings.ping_interval,
            retry_ms=context.stream_retry(),
            on_sent=context.metrics.events_sent,
            formatter=context.hub.formatter,
            steps=context.hub.steps,
            pusher=pusher,
        ):
            if not text.endswith("\n\n"):
                # Part of a message (the stream's `retry:` field, yielded apart so that
                # the shared text after it stays shared): it goes out with the rest.
                held += encoded(text)
                continue
            yield held + encoded(text) if held else encoded(text)
            held = b""
    finally:
        sub.close()


class _Pusher:
    """`progress.sse.Pusher` over a subscription, counting what the hub writes."""

    def __init__(self, sub: Subscription, on_sent: Callable[[int], None]) -> None:
        self._sub = sub
        self._on_sent = on_sent

    def push(
        self, scope: Scope, scan: int, step: Callable[[int, int], Step], until: float
    ) -> Pushed:
        return self._sub.push(scope, scan, step, until, self._on_sent)


def _stream(scope: Scope) -> Response:
    context = web_context()
    if context.hub.closed:
        raise Unavailable("the server is shutting down")
    return stream_response(context, plan_scope(context, scope, request_cursor()))


def plan_scope(context: WebContext, scope: Scope, cursor: int | None) -> StreamPlan:
    """How a stream of `scope` from `cursor` starts, from the hub's shared reads; raises
    UnknownJob / UnknownBatch."""
    return plan_stream(
        context.store,
        scope,
        cursor,
        snapshot=context.hub.snapshots,
        head=context.hub.head,
        finished=context.hub.finished,
        compacted=context.hub.compacted,
    )


def stream_response(context: WebContext, plan: StreamPlan) -> Response:
    """The SSE answer of a planned stream (see `open_stream`)."""
    session = context.guard.session(request)
    body = open_stream(context, plan, request.environ, session.key if session else None)
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
