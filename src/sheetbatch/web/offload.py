"""Running blocking store work off the server's event loop, in gevent's pool of OS threads.

SQLite calls (and the Python that builds a page of snapshots) do not yield to gevent: on the
loop, a write waiting for a worker process's transaction, or a 500-row read, would stall
every stream and `/healthz` meanwhile. `offload(fn, ...)` runs such work in a real thread of
gevent's threadpool and parks only the calling greenlet; the sqlite3 module releases the GIL
while the database works. Without gevent (Flask's test client, tests) it simply calls `fn`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")


def gevent_active() -> bool:
    """Whether this process runs under gevent's monkey-patching (`sheetbatch serve`)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("socket"))


def offload(fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """`fn(*args, **kwargs)`, run in a threadpool thread under gevent; its result or error."""
    if not gevent_active():
        return fn(*args, **kwargs)
    import gevent

    def call() -> tuple[bool, Any]:
        # The error comes back as a value: gevent's pool would print an expected one
        # (an unknown batch id) to stderr as if it were a crash.
        try:
            return True, fn(*args, **kwargs)
        except Exception as exc:
            return False, exc

    pool = gevent.get_hub().threadpool
    if pool.maxsize < 8:
        pool.maxsize = 8
    ok, value = pool.apply(call)
    if not ok:
        raise value
    result: R = value
    return result
