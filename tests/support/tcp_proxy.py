"""A TCP proxy between the store and PostgreSQL, for partitions and cut connections.

`TcpProxy` forwards 127.0.0.1:<port> to a target. Modes:
- pass: bytes flow both ways;
- `blackhole()`: connections are accepted but nothing is forwarded either way (what a
  network partition looks like: no error, no answer); `heal()` lets the held bytes through,
  as TCP retransmission would once the link is back;
- `reset()`: every open link is closed at once;
- `cut_at(marker, forward=...)`: one shot, the next client chunk containing `marker` is
  forwarded (or not) and then the link is closed before any answer comes back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self._cut: tuple[bytes, bool] | None = None
        self.cuts = 0
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy-accept", daemon=True).start()

    # ------------------------------------------------------------------ controls
    def blackhole(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    def reset(self) -> None:
        with self._lock:
            links, self._links = self._links, []
        for client, upstream in links:
            _close(client, upstream)

    def cut_at(self, marker: bytes, *, forward: bool) -> None:
        with self._lock:
            self._cut = (marker, forward)

    def close(self) -> None:
        self._closed = True
        self._open.set()
        self._server.close()
        self.reset()

    # ------------------------------------------------------------------ plumbing
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links.append((client, upstream))
            for src, dst, outgoing in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, outgoing), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outgoing: bool) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._open.wait()  # blackholed: hold the bytes, forward nothing
                if self._closed:
                    break
                if outgoing and self._cutting(data, dst):
                    break
                dst.sendall(data)
        _close(src, dst)

    def _cutting(self, data: bytes, dst: socket.socket) -> bool:
        with self._lock:
            cut = self._cut
            if cut is None or cut[0] not in data:
                return False
            self._cut = None
            self.cuts += 1
        if cut[1]:
            dst.sendall(data)
        return True


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@contextlib.contextmanager
def proxied_postgres(url: str) -> Iterator[tuple[str, TcpProxy]]:
    """A proxy in front of the PostgreSQL of `url`, and `url` pointed at it (no TLS)."""
    proxy = TcpProxy(("127.0.0.1", 5432))
    sep = "&" if "?" in url else "?"
    try:
        yield (
            url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
            + (f"{sep}sslmode=disable"),
            proxy,
        )
    finally:
        proxy.close()
