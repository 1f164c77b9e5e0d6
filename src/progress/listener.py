"""Following the log from other processes on PostgreSQL: LISTEN/NOTIFY on the log head.

Every group commit that appended events sends one `NOTIFY` carrying the new head id, inside
its own transaction (PostgreSQL delivers it at commit, in commit order, and only then: a
process woken by it reads committed rows). Each process LISTENs on one dedicated autocommit
connection and pokes its log feed with the head it was told, so an SSE stream of any web
node wakes within milliseconds of a commit made by a worker, a `run` or another `serve`.

A notification is a hint, never the truth: the feed reads the log after its cursor, and it
still reads the head every few seconds (and often while the LISTEN connection is down), so
a lost notification or a cut connection delays a wake-up but loses nothing.

The channel is named after the store's database and schema, so stores that share a server
(one schema per test, or per tenant) do not wake each other.

psycopg is imported only here, and only when a PostgreSQL store starts following the log:
under `sheetbatch serve` that is after gevent's patching (psycopg picks its wait function
at import), and a SQLite store never imports it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from progress.budget import budget_of, no_slot_message

if TYPE_CHECKING:
    import psycopg

    from progress.feed import LogFeed

log = logging.getLogger(__name__)

_IDENTITY = "SELECT current_database(), coalesce(current_schema(), '')"
_RETRY_FIRST = 0.1  # seconds before the first reconnect; doubles up to _RETRY_MAX
_RETRY_MAX = 2.0
_CONNECT_DEFAULTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def channel_name(database: str, schema: str) -> str:
    """The notification channel of the store in `database`.`schema` (a valid identifier)."""
    digest = hashlib.sha256(f"{database}\0{schema}".encode()).hexdigest()[:24]
    return f"sheetbatch_log_{digest}"


class NotifyChannel:
    """The channel a committing transaction sends the new log head to (`Tx.flush` sends the
    NOTIFY with its closing writes), for every listening process: the store's database and
    schema, asked once."""

    def __init__(self) -> None:
        self._channel: str | None = None

    def __call__(self, conn: Connection) -> str:
        if self._channel is None:
            database, schema = conn.exec_driver_sql(_IDENTITY).one()
            self._channel = channel_name(str(database), str(schema))
        return self._channel


class LogListener:
    """The process's LISTEN connection: pokes a `LogFeed` with every head announced.

    It runs on its own thread (a greenlet under gevent), reconnects after the connection is
    lost (backend terminated, server restarted), and tells the feed whether it is listening,
    so the feed polls the head often while it is not.
    """

    def __init__(self, engine: Engine, *, wake_every: float = 0.5) -> None:
        self._engine = engine
        self._wake_every = wake_every  # how soon close() is noticed
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, feed: LogFeed) -> None:
        """Start listening for `feed` (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None or self._closed.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, args=(feed,), name="sheetbatch-log-listener", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop listening and close the connection."""
        self._closed.set()
        with self._lock:  # `start` creates and starts the thread under it: never half-made
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._wake_every + 5)

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        # The engine's own connect arguments: the same server, user, schema and options.
        cargs, cparams = self._engine.dialect.create_connect_args(self._engine.url)
        # An idle LISTEN connection whose peer vanished (a partition) would wait forever:
        # TCP keepalives notice within about a minute, and the listener reconnects.
        cparams = {**_CONNECT_DEFAULTS, **cparams}
        return psycopg.connect(*cargs, **cparams, autocommit=True)

    def _run(self, feed: LogFeed) -> None:
        delay = _RETRY_FIRST
        while not self._closed.is_set():
            try:
                conn = self._connect()
            except Exception as exc:
                # A loop boundary: the server may be restarting; the feed polls meanwhile.
                cause = no_slot_message(exc, budget_of(self._engine)) or exc
                log.warning("log feed: cannot open the LISTEN connection (%s); retrying", cause)
                self._closed.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            delay = _RETRY_FIRST
            try:
                self._listen(conn, feed)
            except Exception as exc:
                if not self._closed.is_set():
                    log.warning("log feed: LISTEN connection lost (%s); reconnecting", exc)
            finally:
                feed.set_listening(False)
                try:
                    conn.close()
                except Exception:
                    log.debug("log feed: closing the LISTEN connection failed", exc_info=True)

    def _listen(self, conn: psycopg.Connection[Any], feed: LogFeed) -> None:
        from psycopg import sql

        row = conn.execute(_IDENTITY).fetchone()
        assert row is not None
        channel = channel_name(str(row[0]), str(row[1]))
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        # Listening from now on; whatever committed before is found by the feed's read of
        # the head that this triggers.
        feed.set_listening(True)
        while not self._closed.is_set():
            for notice in conn.notifies(timeout=self._wake_every):
                try:
                    feed.poke(int(notice.payload))
                except ValueError:
                    feed.poke()
