"""The dashboard's pages (`/`, `/batches/<id>`) and its sign-in (`/login`, `/logout`).

The pages are one template and one script (static/app.js, no build step); everything live
comes from the REST API and the event streams, like any other client. Every redirect is a
relative path on this server: never built from the `Host` header, never off-site.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from pipeline.registry import builtin_names
from progress.schema import ID_PATTERN
from sheetbatch.web.auth import COOKIE, token_matches
from sheetbatch.web.context import web_context
from sheetbatch.web.errors import TooManyRequests
from sheetbatch.web.offload import offload

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__)

_ID = re.compile(ID_PATTERN)
# What may stay unescaped in a redirect target's path and query.
_PATH_SAFE = "/-._~!$&'()*+,;=:@%"


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this server, re-encoded; else the dashboard's root.

    Browsers drop tabs and newlines from URLs and read `\\` as `/`, so `/\\t/evil.example`
    would become `//evil.example`: a target with any control character, whitespace or
    backslash is refused outright, and what is kept is percent-encoded again.
    """
    home = url_for("dashboard.index")
    if not target or len(target) > 2000:
        return home
    if target.startswith("//") or any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in target):
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return home
    path = quote(parts.path, safe=_PATH_SAFE)
    if path.startswith("//"):
        return home
    query = quote(parts.query, safe=_PATH_SAFE + "?")
    return path + (f"?{query}" if query else "")


def _page(page: str, batch_id: str = "") -> str | BaseResponse:
    context = web_context()
    guard = context.guard
    if guard.required and not guard.signed_in(request):
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    pipelines = sorted({*builtin_names(), context.settings.pipeline})
    return render_template(
        "index.html",
        page=page,
        batch_id=batch_id,
        csrf_token=guard.csrf_token(request),
        signed_in=guard.required,
        watchdog_seconds=context.watchdog_seconds,
        default_pipeline=context.settings.pipeline,
        pipelines=pipelines,
    )


@bp.get("/")
def index() -> str | BaseResponse:
    """The batches list, with the start-a-batch form."""
    return _page("list")


@bp.get("/batches/<batch_id>")
def batch_page(batch_id: str) -> str | BaseResponse:
    """One batch: overall bar with ETA, per-row table, time per phase."""
    if not _ID.fullmatch(batch_id):
        abort(404)
    return _page("batch", batch_id)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int, dict[str, str]]:
    """Sign the dashboard in with the API token; a session cookie carries it after."""
    context = web_context()
    guard = context.guard
    target = safe_next(request.values.get("next"))
    if not guard.required:
        return redirect(target)
    if request.method == "GET":
        return render_template("login.html", next=target, error=""), 200, {}
    try:
        opened = guard.sign_in(request, request.form.get("token", ""))
    except TooManyRequests as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        return render_template("login.html", next=target, error=exc.message), 429, headers
    if opened is None:
        return render_template("login.html", next=target, error="That is not the token."), 401, {}
    cookie, _session = opened
    log.info("dashboard signed in from %s", guard.client(request))
    response = redirect(target)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(context.settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=guard.https(request),
    )
    return response


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the session everywhere: its row goes, its open streams close."""
    context = web_context()
    guard = context.guard
    session = guard.session(request)
    if guard.required:
        sent = request.form.get("csrf", "")
        if session is None or not sent or not token_matches(session.csrf, sent):
            return Response("missing or wrong CSRF token", status=403)
    if session is not None and guard.sessions is not None:
        offload(guard.sessions.revoke, session.key)
        ended = context.hub.end_session(session.key)
        log.info("dashboard signed out from %s (%d streams closed)", guard.client(request), ended)
    response = redirect(url_for("dashboard.login"))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
    return response
