"""The Server-Sent Events wire format of the progress log (html.spec.whatwg.org):
messages, the `retry:` field, the heartbeat, the response headers and the client's cursor.
What a stream sends, and when, is `progress.sse`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

SSE_HEADERS: Mapping[str, str] = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
"""The response headers every stream carries (nginx must not buffer it)."""

SNAPSHOT_EVENT = "snapshot"
END_EVENT = "end"
PING_EVENT = "ping"
MAX_CURSOR = 2**63 - 1


# --------------------------------------------------------------------------- wire format
def format_event(event_id: int, event_type: str, data: Any) -> str:
    """One SSE message. JSON escapes newlines, so a single `data:` line always suffices."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"id: {event_id}\nevent: {event_type}\ndata: {payload}\n\n"


def format_log_event(event: Mapping[str, Any]) -> str:
    """A log event as an SSE message: its id, its type, and the whole event as data."""
    return format_event(int(event["id"]), str(event["type"]), event)


class EventFormatter:
    """Formats each log event once for every stream of the process (bounded, by event id).

    With hundreds of streams following the same batch, formatting dominates the server's
    work; the text of an event never changes, so it is shared.
    """

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._texts: dict[int, str] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Mapping[str, Any]) -> str:
        event_id = int(event["id"])
        text = self._texts.get(event_id)
        if text is None:
            text = format_log_event(event)
            with self._lock:
                self._texts[event_id] = text
                while len(self._texts) > self._size:
                    self._texts.pop(next(iter(self._texts)))
        return text


def format_retry(milliseconds: int) -> str:
    """The `retry:` field line (how long EventSource waits before reconnecting), to put in
    front of a message: it then belongs to that message's block."""
    return f"retry: {int(milliseconds)}\n"


def jittered_retry(milliseconds: int, spread: float, draw: float) -> int:
    """A stream's `retry:` value: `milliseconds` moved by up to `spread` of itself either way,
    by `draw` (0 <= draw < 1, from the caller's random source).

    EventSource waits the `retry:` time before it reconnects after losing the stream; when a
    proxy or a network blip cuts a thousand streams at once, a retry that differs per stream
    spreads their reconnects over a window instead of landing them all in the same
    milliseconds (each costs the server's loop a request), while on average they come back
    as soon as before.
    """
    spread = min(max(spread, 0.0), 1.0)
    return max(1, round(milliseconds * (1.0 - spread + 2.0 * spread * draw)))


def format_ping(cursor: int) -> str:
    """The heartbeat: a `: ping` comment plus an id-less `ping` event scripts can see."""
    return f': ping\nevent: {PING_EVENT}\ndata: {{"cursor":{int(cursor)}}}\n\n'


def parse_cursor(value: str | None) -> int | None:
    """A `Last-Event-ID` / `last_event_id` value as a cursor; None when absent or empty.

    Raises ValueError for anything but a non-negative decimal integer.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if not text.isascii():
        # Often digits of another script (or bytes mis-decoded): echoing them helps nobody.
        raise ValueError(
            "not a cursor: use the id of the last event received, in the digits 0-9 only"
        )
    if not text.isdigit() or len(text) > 19:
        raise ValueError(f"not a cursor (a non-negative integer): {value[:40]!r}")
    cursor = int(text)
    if cursor > MAX_CURSOR:
        raise ValueError(f"cursor out of range: {value[:40]!r}")
    return cursor
