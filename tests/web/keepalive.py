"""A browser-like HTTP/1.1 client for load tests: one kept-alive connection, many requests.

asyncio streams, no library: hundreds of them run in one test process. `stream_until_end`
reads an event stream (chunked) through its terminating chunk, so the connection can carry
the next request, as a browser reuses it.
"""

from __future__ import annotations

import asyncio


class KeepAlive:
    """One connection to `host:port`, reused for every request."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _send(self, path: str, headers: dict[str, str]) -> str:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        assert self.reader is not None
        return (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")

    async def _chunks(self) -> list[bytes]:
        assert self.reader is not None
        out = []
        while True:
            size = int((await self.reader.readline()).strip() or b"0", 16)
            if size == 0:
                await self.reader.readline()
                return out
            out.append((await self.reader.readexactly(size + 2))[:-2])

    async def get(self, path: str) -> tuple[str, bytes]:
        """A plain GET; (status line, body)."""
        head = await self._send(path, {})
        assert self.reader is not None
        if "chunked" in head.lower():
            body = b"".join(await self._chunks())
        else:
            length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
            body = await self.reader.readexactly(length)
        self._maybe_closed(head)
        return head.split("\r\n", 1)[0], body

    async def stream_until_end(self, path: str) -> int:
        """Follow an event stream to its end on this connection; how many events it had."""
        head = await self._send(path, {"Accept": "text/event-stream"})
        if not head.startswith("HTTP/1.1 200"):
            raise AssertionError(head.split("\r\n", 1)[0])
        body = b"".join(await self._chunks())
        self._maybe_closed(head)
        if b"\nevent: end\n" not in body and not body.startswith(b"event: end"):
            raise AssertionError(f"{path}: the stream ended without `end`")
        return body.count(b"\nevent: ")

    def _maybe_closed(self, head: str) -> None:
        if "connection: close" in head.lower() and self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None
