"""The dashboard's pages (`/`, `/batches/<id>`) and its sign-in (`/login`, `/logout`).

The pages are one template and one script (static/app.js, no build step); everything live
comes from the REST API and the event streams, like any other client.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from sheetbatch.web.context import web_context

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _page(page: str, batch_id: str = "") -> str | BaseResponse:
    guard = web_context().guard
    if guard.required and not guard.signed_in():
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    context = web_context()
    return render_template(
        "index.html",
        page=page,
        batch_id=batch_id,
        csrf_token=guard.csrf_token(),
        signed_in=guard.required,
        watchdog_seconds=context.watchdog_seconds,
        default_pipeline=context.settings.pipeline,
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


def _safe_next(target: str | None) -> str:
    # Only a path on this server: never an absolute or scheme-relative URL (open redirect).
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("dashboard.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int]:
    """Sign the dashboard in once with the API token; a session cookie carries it after."""
    guard = web_context().guard
    target = _safe_next(request.values.get("next"))
    if not guard.required:
        return redirect(target)
    if request.method == "POST":
        if guard.sign_in(request.form.get("token", "")):
            log.info("dashboard signed in from %s", request.remote_addr)
            return redirect(target)
        log.warning("dashboard sign-in refused from %s", request.remote_addr)
        return render_template("login.html", next=target, error="That is not the token."), 401
    return render_template("login.html", next=target, error="")


@bp.post("/logout")
def logout() -> BaseResponse:
    """Forget the session (the form carries the CSRF token)."""
    guard = web_context().guard
    if guard.required and request.form.get("csrf") != guard.csrf_token():
        return Response("missing or wrong CSRF token", status=403)
    session.clear()
    return redirect(url_for("dashboard.login"))
