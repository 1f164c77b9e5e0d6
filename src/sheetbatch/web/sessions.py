"""The dashboard's sign-in sessions, kept in the progress store so they can be revoked.

A session cookie is a random 256-bit id - nothing in it is derived from the API token, so a
leaked cookie gives no way to guess the token offline. The store keeps only an HMAC of that
id under the server's secret (random, generated once and kept in the store's `sb_meta`), with
the session's CSRF token, its expiry (`[server] session_hours`) and a mark of the API token
it was opened with: signing out deletes the row (every tab and every server on this store
then refuses the cookie), a session ends on its own when it expires, and a new API token
ends every session of the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from progress import Store
from progress import schema as t

log = logging.getLogger(__name__)

SECRET_KEY = "web_session_secret"


@dataclass(frozen=True)
class Session:
    """A signed-in dashboard session: its store key and CSRF token."""

    key: str
    csrf: str
    expires: float


def server_secret(store: Store) -> bytes:
    """The server's random secret, created in the store the first time it is asked for."""
    query = select(t.meta.c.value).where(t.meta.c.key == SECRET_KEY)
    with store.engine.connect() as conn:
        value = conn.execute(query).scalar_one_or_none()
    if value is None:
        try:
            with store.engine.execution_options(sheetbatch_write=True).begin() as conn:
                conn.execute(insert(t.meta).values(key=SECRET_KEY, value=secrets.token_hex(32)))
            log.info("generated the server's session secret")
        except IntegrityError:
            pass  # another server on this store made it at the same moment: use theirs
        with store.engine.connect() as conn:
            value = conn.execute(query).scalar_one()
    return bytes.fromhex(str(value))


class SessionStore:
    """Creates, finds and revokes sessions (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        token: str,
        *,
        hours: float = 12.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.secret = server_secret(store)
        self.seconds = hours * 3600.0
        self.clock = clock
        self._token_mark = self._mac(b"token:" + token.encode())

    def _mac(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def key_of(self, cookie: str) -> str:
        """The store key of a cookie value."""
        return self._mac(b"session:" + cookie.encode())

    def create(self, client: str) -> tuple[str, Session]:
        """A new session for `client`: the cookie value to set, and the session."""
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(self.key_of(cookie), secrets.token_urlsafe(32), now + self.seconds)
        with self.store.engine.execution_options(sheetbatch_write=True).begin() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.expires <= now))
            conn.execute(
                insert(t.sessions).values(
                    key=session.key,
                    csrf=session.csrf,
                    token_mark=self._token_mark,
                    client=client[:200],
                    created=now,
                    expires=session.expires,
                )
            )
        return cookie, session

    def find(self, cookie: str) -> Session | None:
        """The live session of a cookie value, or None (unknown, revoked, expired, old token)."""
        if not cookie or len(cookie) > 200:
            return None
        key = self.key_of(cookie)
        query = select(t.sessions).where(t.sessions.c.key == key)
        with self.store.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        if row is None or row.expires <= self.clock():
            return None
        if not hmac.compare_digest(row.token_mark, self._token_mark):
            return None
        return Session(row.key, row.csrf, row.expires)

    def revoke(self, key: str) -> bool:
        """End a session everywhere; whether it existed."""
        with self.store.engine.execution_options(sheetbatch_write=True).begin() as conn:
            result = conn.execute(delete(t.sessions).where(t.sessions.c.key == key))
        return bool(result.rowcount)
