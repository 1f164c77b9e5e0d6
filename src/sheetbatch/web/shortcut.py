"""Event streams opened without Flask: `StreamShortcut`, a WSGI middleware in front of the app.

A thousand dashboards reconnecting at once each cost the server's one event loop a request
through Flask - request context, routing, the before/after hooks, a `Response` wrapping the
body - about half a millisecond of CPU apiece on a small machine, while the live events
committed meanwhile wait. A stream's start needs little of that: the path names the scope,
one header or query parameter the cursor, the guard says yes, and the body is the very
generator the Flask view returns (`events.open_stream`).

The shortcut answers only requests whose answer it knows is a stream, exactly as Flask would
send it (status, headers, body); everything else - other paths and methods, a malformed id
or cursor, a query string it does not read, any authentication that does not plainly pass,
an unknown job or batch, a server shutting down - goes on to Flask untouched, which answers
and logs it as always. So the rules live in one place each (`Guard`, `parse_cursor`,
`plan_stream`); this module only recognises the easy case.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from progress.schema import ID_PATTERN
from progress.sse import Scope
from progress.sse_wire import SSE_HEADERS, parse_cursor
from sheetbatch.web.context import WebContext
from sheetbatch.web.events import open_stream, plan_scope

log = logging.getLogger(__name__)

_ID = f"(?:{ID_PATTERN.removeprefix('^').removesuffix('$')})"
_PATHS = re.compile(rf"/events/(?:progress(?:/(?P<job>{_ID}))?|batches/(?P<batch>{_ID}))")
_QUERY = re.compile(r"(?:last_event_id=(?P<cursor>[0-9]*))?")

# What the app's `after_request` adds to every answer of an `/events/` path.
_APP_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))
HEADERS = [*SSE_HEADERS.items(), *_APP_HEADERS]
"""The response headers of a stream, in Flask's order."""

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class StreamShortcut:
    """Serves `GET /events/progress[/<job_id>]` and `/events/batches/<batch_id>` past Flask
    when the request plainly opens a stream; hands every other request to `app`."""

    def __init__(self, app: WSGIApp, context: WebContext) -> None:
        self.app = app
        self.context = context
        self.served = 0  # streams opened here (the rest went through Flask)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO", "").startswith(
            "/events/"
        ):
            body = self._stream(environ)
            if body is not None:
                self.served += 1
                start_response("200 OK", HEADERS)
                return body
        return self.app(environ, start_response)

    def _stream(self, environ: dict[str, Any]) -> Iterable[bytes] | None:
        """The stream's body, or None when Flask must answer the request."""
        path = _PATHS.fullmatch(environ["PATH_INFO"])
        query = _QUERY.fullmatch(environ.get("QUERY_STRING", ""))
        if path is None or query is None or _has_body(environ):
            return None
        context = self.context
        if context.hub.closed:
            return None
        try:
            cursor = parse_cursor(environ.get("HTTP_LAST_EVENT_ID"))
            if cursor is None:
                cursor = parse_cursor(query["cursor"])
        except ValueError:
            return None
        scope = Scope(job_id=path["job"], batch_id=path["batch"])
        try:
            allowed, session = context.guard.passes(environ)
            if not allowed:
                return None
            plan = plan_scope(context, scope, cursor)
        except Exception:
            # An unknown job or batch (404), a store that does not answer (503), a bug (500):
            # Flask answers every failure, and logs it, through the app's one error map.
            return None
        return open_stream(context, plan, environ, session.key if session else None)


def _has_body(environ: dict[str, Any]) -> bool:
    # Flask reads a GET's body before the view (`_bound_chunked_body`): leave it to Flask.
    return bool(environ.get("CONTENT_LENGTH") or environ.get("HTTP_TRANSFER_ENCODING"))
