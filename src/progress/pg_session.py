"""How the store's PostgreSQL sessions behave when a peer or the link goes away.

- A lost connection is recognised by its SQLSTATE (class 08, connection exception; 57P0x,
  the server ended the session) and by psycopg's "cannot exit pipeline mode" error: psycopg
  runs `executemany` in pipeline mode, and a backend killed mid-pipeline can leave the
  connection not yet flagged `broken`, so SQLAlchemy's own check calls it a plain error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def is_lost_connection(exc: BaseException) -> bool:
    """Whether this driver error means the session is gone (the write may be retried)."""
    sqlstate = str(getattr(exc, "sqlstate", None) or "")
    if sqlstate.startswith("08") or sqlstate.startswith("57P"):
        return True
    return "pipeline mode" in str(exc)


def configure_postgresql(engine: Engine) -> None:
    """Install the rule above on a PostgreSQL engine (for SQLAlchemy Core's statements)."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if not context.is_disconnect and is_lost_connection(context.original_exception):
            context.is_disconnect = True
