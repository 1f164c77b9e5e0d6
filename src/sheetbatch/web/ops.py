"""Operational endpoints: `/healthz` for liveness probes and `/metrics` for Prometheus."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from progress.errors import StoreUnavailable
from sheetbatch.web.context import web_context
from sheetbatch.web.metrics import CONTENT_TYPE, StoreFigures
from sheetbatch.web.offload import offload

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 while the store answers and the server is not shutting down; 503 otherwise."""
    context = web_context()
    if context.hub.closed:
        return jsonify({"status": "stopping", "error": "the server is shutting down"}), 503
    try:
        cursor = context.store.last_event_id()
    except Exception as exc:
        # A probe's boundary: whatever the database answers (SQLAlchemy's or the driver's
        # error), the answer is "not healthy", never a crash. The store's own errors say
        # why (no connection slot left, every connection busy): the body says it too.
        log.warning("health check: the store does not answer: %s", exc)
        error = (
            str(exc) if isinstance(exc, StoreUnavailable) else "the progress store does not answer"
        )
        return jsonify({"status": "unavailable", "error": error}), 503
    return jsonify({"status": "ok", "cursor": cursor}), 200


@bp.get("/metrics")
def metrics() -> Response:
    """Jobs and batches by status, events appended, open streams, sheet flush latency."""
    context = web_context()
    # The store's reads are the blocking part: off the loop. The rest reads this process's
    # own objects, on the loop that owns them.
    figures = offload(StoreFigures.read, context.store)
    return Response(context.metrics.exposition(figures), mimetype=None, content_type=CONTENT_TYPE)
