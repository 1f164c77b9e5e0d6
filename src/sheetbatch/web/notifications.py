"""`GET /api/batches/<id>/notifications`: a batch's notifications and their delivery state."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from progress.errors import UnknownBatch
from sheetbatch.web.api import valid_id
from sheetbatch.web.context import web_context
from sheetbatch.web.errors import NotFound
from sheetbatch.web.offload import offload

bp = Blueprint("notifications", __name__, url_prefix="/api")


@bp.get("/batches/<batch_id>/notifications")
def batch_notifications(batch_id: str) -> Response:
    """Every notification of the batch (oldest first) with its state and every attempt."""
    valid_id(batch_id, "batch_id")
    store = web_context().store
    try:
        offload(store.batch, batch_id)
    except UnknownBatch as exc:
        raise NotFound(str(exc), field="batch_id") from exc
    found = offload(store.notifications, batch_id=batch_id)
    return jsonify(
        {"batch_id": batch_id, "notifications": [delivery.to_json() for delivery in found]}
    )
