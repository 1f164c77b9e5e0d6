"""A TCP proxy on 127.0.0.1 that a test controls: it can blackhole or cut live connections.

`freeze()` makes every open event-stream connection silently drop what the server sends
(the stream looks alive to the browser but nothing arrives: the silent SSE stall of seed
002); `cut()` closes them at once. Other requests and new connections always pass through.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class _Pipe:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.frozen = False
        self.closed = False
        self.stream = False  # carries an event stream (its request asked for /events/)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class Proxy:
    """Forwards 127.0.0.1:<port> to the target; see the module docstring."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").rstrip("/").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._pipes: list[_Pipe] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pipe = _Pipe(client, upstream)
            with self._lock:
                self._pipes.append(pipe)
            threading.Thread(
                target=self._pump, args=(pipe, client, upstream, False), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(pipe, upstream, client, True), daemon=True
            ).start()

    def _pump(
        self, pipe: _Pipe, source: socket.socket, sink: socket.socket, downstream: bool
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if downstream and pipe.frozen:
                    continue  # blackholed: the browser hears nothing, the server is unaware
                if not downstream and b" /events/" in data.split(b"\r\n", 1)[0]:
                    pipe.stream = True
                sink.sendall(data)
        except OSError:
            pass
        finally:
            pipe.close()
            with self._lock:
                if pipe in self._pipes:
                    self._pipes.remove(pipe)

    def open_connections(self) -> int:
        """How many connections pass through now."""
        with self._lock:
            return len(self._pipes)

    def freeze(self) -> int:
        """Blackhole every open event-stream connection; how many."""
        with self._lock:
            streams = [p for p in self._pipes if p.stream]
        for pipe in streams:
            pipe.frozen = True
        return len(streams)

    def cut(self, *, streams_only: bool = True) -> int:
        """Close every open event-stream connection (or every connection); how many."""
        with self._lock:
            pipes = [p for p in self._pipes if p.stream or not streams_only]
        for pipe in pipes:
            pipe.close()
        return len(pipes)

    def close(self) -> None:
        """Stop accepting and close everything."""
        self._stopped = True
        self.listener.close()
        self.cut(streams_only=False)
