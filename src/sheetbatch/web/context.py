"""What every view of one app shares: settings, the store, the stream hub, the runner, metrics,
the auth guard and the sheet policy."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from flask import Flask, current_app

from progress import Store
from progress.sse_wire import jittered_retry
from sheetbatch.config import Settings
from sheetbatch.web.auth import Guard
from sheetbatch.web.metrics import Metrics
from sheetbatch.web.runner import BatchRunner
from sheetbatch.web.sheets import SheetPolicy
from sheetbatch.web.streams import StreamHub

EXTENSION = "sheetbatch"
# Where the server's request handler puts the client socket (see sheetbatch.serve).
SOCKET_KEY = "sheetbatch.socket"
HANDLER_KEY = "sheetbatch.handler"  # the connection's pywsgi handler (chunked or not)


@dataclass
class WebContext:
    """The app's long-lived parts; `owns_store` says whether shutdown closes the store."""

    settings: Settings
    store: Store
    hub: StreamHub
    runner: BatchRunner
    metrics: Metrics
    guard: Guard
    sheets: SheetPolicy
    owns_store: bool
    watchdog_seconds: float = 30.0
    retry_ms: int = 2000
    # How far each stream's `retry:` may move from `retry_ms`, either way (a share of it).
    retry_spread: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def stream_retry(self) -> int:
        """The `retry:` of a new stream (`jittered_retry`: reconnect storms spread out)."""
        return jittered_retry(self.retry_ms, self.retry_spread, self.rng.random())


def web_context(app: Flask | None = None) -> WebContext:
    """The context of `app` (the current app by default)."""
    target = app if app is not None else current_app
    context: WebContext = target.extensions[EXTENSION]
    return context
