"""What a notification looks like on the wire: its JSON body, Slack's format, the signature.

A webhook's body is `{"type", "timestamp", "data"}` (the outcome as the store recorded it,
plus a link to the batch page when `[server] public_url` is set). Its headers follow
Standard Webhooks: `webhook-id` (the notification's id: the same on every attempt),
`webhook-timestamp` (the attempt's, in seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the `whsec_` secret). A Slack
incoming-webhook URL (host `hooks.slack.com`) gets Slack's message format instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from progress.notify_model import Delivery
from progress.snapshots import iso
from sheetbatch.slack import slack_message

log = logging.getLogger(__name__)

SLACK_HOSTS = frozenset({"hooks.slack.com"})


def is_slack(url: str) -> bool:
    """Whether `url` is a Slack incoming webhook."""
    return (urlsplit(url).hostname or "").lower() in SLACK_HOSTS


def batch_link(public_url: str, batch_id: str | None) -> str | None:
    """The dashboard's page of the batch, when the server's public URL is known."""
    if not public_url or not batch_id:
        return None
    return f"{public_url.rstrip('/')}/batches/{quote(batch_id, safe='')}"


def payload(delivery: Delivery, public_url: str = "") -> dict[str, Any]:
    """The Standard Webhooks body of a notification (the same on every attempt)."""
    data = dict(delivery.data)
    link = batch_link(public_url, delivery.batch_id)
    if link is not None:
        data["url"] = link
    return {"type": delivery.type, "timestamp": iso(delivery.created), "data": data}


def body_for(delivery: Delivery, public_url: str = "") -> bytes:
    """The bytes sent to the notification's URL: Slack's format for Slack, else the payload."""
    message = payload(delivery, public_url)
    if is_slack(delivery.url):
        message = slack_message(message)
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class Signer:
    """Signs requests with a Standard Webhooks secret (`whsec_<base64>`); with none, the
    requests go unsigned (said once in the log)."""

    secret: str = ""

    def headers(self, message_id: str, timestamp: int, body: bytes) -> list[tuple[str, str]]:
        """The `webhook-*` headers of one attempt."""
        headers = [("webhook-id", message_id), ("webhook-timestamp", str(timestamp))]
        if self.secret:
            headers.append(("webhook-signature", sign(self.secret, message_id, timestamp, body)))
        else:
            _warn_unsigned_once()
        return headers


_unsigned_warned = threading.Event()


def _warn_unsigned_once() -> None:
    if not _unsigned_warned.is_set():
        _unsigned_warned.set()
        log.warning("SHEETBATCH_WEBHOOK_SECRET is not set: webhook notifications are sent unsigned")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256("id.timestamp.body")>` under the secret's key."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
