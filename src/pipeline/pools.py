"""The fetcher's connections: vetted connection pools spread over shards, and the per-host
limit on concurrent requests."""

from __future__ import annotations

import ssl
import threading

import certifi
import httpcore


class ShardedPool:
    """Connection pools whose every connection is vetted, with origins spread over shards.

    httpcore's pool does work proportional to its connections on every request, under one
    lock; many threads crawling many sites contend less on several small pools. httpcore is
    used directly, without httpx's client layer (cookies, auth, URL models, redirects - all
    unwanted here): a request costs 40 % less CPU, which is GIL time 32 workers share.
    """

    def __init__(
        self,
        backend: httpcore.NetworkBackend,
        max_connections: int,
        shards: int,
        verify: ssl.SSLContext | bool,
    ) -> None:
        per_shard = max(1, max_connections // shards)
        # Loading CA certificates is slow: one context for every shard.
        if isinstance(verify, ssl.SSLContext):
            context = verify
        elif verify:
            context = ssl.create_default_context(cafile=certifi.where())
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._shards = [
            httpcore.ConnectionPool(
                ssl_context=context,
                max_connections=per_shard,
                # A crawler seldom returns to a site after a few seconds: a small, short-lived
                # idle pool is faster to scan than a large one.
                max_keepalive_connections=min(16, per_shard),
                # A row's requests to its site follow each other closely; a finished row's
                # connections are dead weight that every request of the pool would scan.
                keepalive_expiry=1.0,
                network_backend=backend,
            )
            for _ in range(shards)
        ]

    def pool(self, origin: tuple[str, str, int]) -> httpcore.ConnectionPool:
        return self._shards[hash(origin) % len(self._shards)]

    def close(self) -> None:
        for shard in self._shards:
            shard.close()


class HostSlots:
    """At most `limit` concurrent requests per host:port; waiting is bounded by a deadline."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._active: dict[str, int] = {}
        self._cond = threading.Condition()

    def acquire(self, key: str, timeout: float) -> bool:
        with self._cond:
            ok = self._cond.wait_for(lambda: self._active.get(key, 0) < self._limit, timeout)
            if ok:
                self._active[key] = self._active.get(key, 0) + 1
            return ok

    def release(self, key: str) -> None:
        with self._cond:
            count = self._active.get(key, 0) - 1
            if count <= 0:
                self._active.pop(key, None)
            else:
                self._active[key] = count
            self._cond.notify_all()
