"""How the store's PostgreSQL sessions behave when a peer or the link goes away.

Two rules, both for one reason: the store's fences (lease epochs) only help when nobody can
hold the database hostage, and a cut connection must be known as one so the write is retried.

- A lost connection is recognised by its SQLSTATE (class 08, connection exception; 57P0x,
  the server ended the session) and by psycopg's "cannot exit pipeline mode" error: psycopg
  runs `executemany` in pipeline mode, and a backend killed mid-pipeline can leave the
  connection not yet flagged `broken`, so SQLAlchemy's own check calls it a plain error.
- A session stays idle inside a transaction for at most `IDLE_IN_TRANSACTION_MS`: a process
  paused (SIGSTOP, a long GC, a VM freeze) or cut off (a partition) while its transaction
  holds the log head's row lock would otherwise stall every writer of the cluster until it
  wakes or TCP gives up, long after its lease expired. The server ends such a session
  (SQLSTATE 25P03); the holder's next write fails as a lost connection and, retried on a
  new one, is refused by its fence.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

# Our transactions run a few statements back to back; 5 s idle inside one is a stalled client.
IDLE_IN_TRANSACTION_MS = 5000


def is_lost_connection(exc: BaseException) -> bool:
    """Whether this driver error means the session is gone (the write may be retried)."""
    sqlstate = str(getattr(exc, "sqlstate", None) or "")
    if sqlstate.startswith(("08", "57P")) or sqlstate == "25P03":
        return True
    return "pipeline mode" in str(exc)


def configure_postgresql(engine: Engine) -> None:
    """Install the rules above on a PostgreSQL engine."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
        dbapi_connection.commit()

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if not context.is_disconnect and is_lost_connection(context.original_exception):
            context.is_disconnect = True
