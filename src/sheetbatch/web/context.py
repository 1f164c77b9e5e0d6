"""What every view of one app shares: settings, the store, the stream hub, the runner, metrics,
the auth guard and the sheet policy."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from progress import Store
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


def web_context(app: Flask | None = None) -> WebContext:
    """The context of `app` (the current app by default)."""
    target = app if app is not None else current_app
    context: WebContext = target.extensions[EXTENSION]
    return context
