"""Fixture and example websites served for real on 127.0.0.1.

`SiteServer` serves every site directory under a root on its own ephemeral port, so each site is
a distinct host:port with its own /robots.txt, exactly as the fetcher sees real sites. A site's
`_site.toml` adds behaviours files cannot express:

```toml
[redirects]            # path -> target; "{site:NAME}" is another site's root URL
"/" = "/home"
[chains]               # "/loop" -> "/loop/1" -> ... -> "/loop/N" -> "/"
"/loop" = 8
[slow]                 # seconds to wait before answering
"/slow" = 30.0
[large]                # an HTML page of this many bytes, generated and streamed
"/huge" = 3000000
[status]               # a bare status answer
"/broken" = 503
[types]                # Content-Type override
"/brochure" = "application/pdf"
```

Everything else is a plain file: `/` is `index.html`, `/about` is `about.html` or
`about/index.html`; anything missing is a 404.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import re
import selectors
import socket
import socketserver
import threading
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

logger = logging.getLogger(__name__)

__all__ = ["Site", "SiteServer", "load_sites", "render_example_csv"]

_PLACEHOLDER = re.compile(r"\{(site:([A-Za-z0-9_.-]+)|dead)\}")


@dataclass
class Site:
    """One website: files (on disk under `root`, or in memory in `files`) plus behaviours."""

    name: str
    root: Path | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    chains: dict[str, int] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)
    large: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dir(cls, path: Path) -> Site:
        """Load a site directory; its optional `_site.toml` configures the behaviours."""
        site = cls(name=path.name, root=path)
        config_path = path / "_site.toml"
        if config_path.exists():
            with config_path.open("rb") as fh:
                config: dict[str, Any] = tomllib.load(fh)
            try:
                site.redirects = {str(k): str(v) for k, v in config.get("redirects", {}).items()}
                site.chains = {str(k): int(v) for k, v in config.get("chains", {}).items()}
                site.slow = {str(k): float(v) for k, v in config.get("slow", {}).items()}
                site.large = {str(k): int(v) for k, v in config.get("large", {}).items()}
                site.status = {str(k): int(v) for k, v in config.get("status", {}).items()}
                site.types = {str(k): str(v) for k, v in config.get("types", {}).items()}
            except (AttributeError, TypeError, ValueError) as exc:
                raise ValueError(f"{config_path}: {exc}") from exc
        return site

    def read(self, path: str) -> tuple[bytes, str] | None:
        """The body and content type for a URL path, or None when the site has no such file."""
        candidates = [path.lstrip("/")]
        if path.endswith("/"):
            candidates = [path.lstrip("/") + "index.html"]
        elif "." not in path.rsplit("/", 1)[-1]:
            candidates += [path.lstrip("/") + ".html", path.lstrip("/") + "/index.html"]
        for candidate in candidates:
            if any(part.startswith(("_", ".")) for part in candidate.split("/")):
                continue  # never serve _site.toml or hidden files
            body = self._load(candidate)
            if body is not None:
                guessed = mimetypes.guess_type(candidate)[0] or "application/octet-stream"
                content_type = self.types.get(path, guessed)
                # HTML declares its own charset (or not), as on real servers; other text is UTF-8.
                if content_type == "text/plain":
                    content_type += "; charset=utf-8"
                return body, content_type
        return None

    def _load(self, relative: str) -> bytes | None:
        if "/" + relative in self.files or relative in self.files:
            return self.files.get("/" + relative, self.files.get(relative))
        if self.root is None:
            return None
        root = self.root.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
        return target.read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, site: Site, owner: SiteServer) -> None:
        self.site = site
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)
        self.timeout = 0  # handle_request() must not block: the owner's selector waits

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) per server: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        request, address = super().get_request()
        self.owner._track(request)
        return request, address

    def shutdown_request(self, request: Any) -> None:
        self.owner._untrack(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("site %s: error serving %s", self.site.name, client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls
    server_version = "sheetbatch-sites/0.1"
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("site %s: " + format, self.server.site.name, *args)

    def do_GET(self) -> None:
        owner, name = self.server.owner, self.server.site.name
        owner._count(name, self.path.split("?", 1)[0], +1)
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading (e.g. size cap)
        finally:
            owner._count(name, "", -1)

    def _answer(self) -> None:
        owner, site = self.server.owner, self.server.site
        path = unquote(self.path.split("?", 1)[0].split("#", 1)[0]) or "/"
        if owner.latency and owner._stopping.wait(owner.latency):
            self.close_connection = True
            return
        delay = site.slow.get(path)
        if delay is not None and owner._stopping.wait(delay):
            self.close_connection = True
            return
        if path in site.status:
            self._send(site.status[path], b"", "text/plain; charset=utf-8")
        elif path in site.redirects:
            self._redirect(owner.expand(site.redirects[path]))
        elif (chain := _chain_target(site.chains, path)) is not None:
            self._redirect(chain)
        elif path in site.large:
            self._stream_large(site.large[path], site.types.get(path, "text/html; charset=utf-8"))
        elif (found := site.read(path)) is not None:
            self._send(200, *found)
        elif delay is not None:
            self._send(200, b"<html><body><p>Finally.</p></body></html>", "text/html")
        else:
            self._send(404, b"<html><body><h1>Not found</h1></body></html>", "text/html")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream_large(self, size: int, content_type: str) -> None:
        # No Content-Length: the client only learns the size by reading, so its cap is exercised.
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        head = b"<html><head><title>About us</title></head><body>"
        tail = b"</body></html>"
        filler = b"<p>We make things. We have made things for a very long time.</p>\n" * 1024
        self.wfile.write(head)
        remaining = max(0, size - len(head) - len(tail))
        while remaining > 0 and not self.server.owner._stopping.is_set():
            chunk = filler[:remaining]
            self.wfile.write(chunk)
            remaining -= len(chunk)
        self.wfile.write(tail)


def _chain_target(chains: Mapping[str, int], path: str) -> str | None:
    for base, length in chains.items():
        if path == base:
            return f"{base}/1"
        if path.startswith(base + "/") and path[len(base) + 1 :].isdigit():
            step = int(path[len(base) + 1 :])
            return f"{base}/{step + 1}" if step < length else "/"
    return None


class SiteServer:
    """Serves sites on 127.0.0.1, one ephemeral port per site, with optional per-request latency.

    Handles many concurrent requests (a thread per connection). Use as a context manager, or
    call `start()` and `stop()`. `url(name)` is a site's root URL; `dead_url` is a port that
    refuses connections for as long as the server runs; `allow_hosts` is what a `Fetcher` needs to
    be allowed to reach these sites.
    """

    def __init__(
        self,
        root_dir: str | Path | None = None,
        latency: float = 0.0,
        *,
        sites: Iterable[Site] = (),
    ) -> None:
        self.latency = latency
        self.sites: dict[str, Site] = {}
        for site in [*(load_sites(root_dir) if root_dir is not None else []), *sites]:
            self.sites[site.name] = site
        self.allow_hosts: list[str] = ["127.0.0.1"]
        self._servers: dict[str, _Server] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._dead: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._hits: Counter[tuple[str, str]] = Counter()
        self._active: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()

    @classmethod
    def synthetic(cls, n_sites: int, latency: float = 0.0) -> SiteServer:
        """A server for `n_sites` generated company sites named `site00001`, `site00002`, ..."""
        from sheetbatch.synthetic_sites import synthetic_sites  # it builds on `Site`

        return cls(latency=latency, sites=synthetic_sites(n_sites))

    def __enter__(self) -> SiteServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Bind every site to its own port and start answering."""
        if self._thread is not None:
            return
        self._stopping.clear()
        dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        self._dead = dead
        for name, site in self.sites.items():
            self._servers[name] = _Server(site, self)
        self._thread = threading.Thread(target=self._accept_loop, name="sites", daemon=True)
        self._thread.start()
        logger.info("serving %d sites on 127.0.0.1", len(self._servers))

    def stop(self) -> None:
        """Stop answering, end open connections and close every socket."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None
        with self._lock:
            for conn in list(self._open):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for server in self._servers.values():
            server.server_close()  # joins its handler threads, which now see EOF or the event
        self._servers.clear()
        if self._dead is not None:
            self._dead.close()
            self._dead = None

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            for server in self._servers.values():
                selector.register(server.socket, selectors.EVENT_READ, server)
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=0.1):
                    server = key.data
                    assert isinstance(server, _Server)
                    server.handle_request()

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)

    def _count(self, site_name: str, path: str, delta: int) -> None:
        with self._lock:
            if delta > 0:
                self._hits[site_name, path] += 1
            self._active[site_name] += delta
            self._peak[site_name] = max(self._peak[site_name], self._active[site_name])

    def hits(self, site_name: str, path: str | None = None) -> int:
        """How many requests a site answered (for `path` only, when given)."""
        with self._lock:
            return sum(
                count
                for (name, hit_path), count in self._hits.items()
                if name == site_name and (path is None or hit_path == path)
            )

    def active(self, site_name: str) -> int:
        """How many requests a site is answering right now."""
        with self._lock:
            return self._active[site_name]

    def peak_concurrency(self, site_name: str) -> int:
        """The most requests a site was answering at once since the server started."""
        with self._lock:
            return self._peak[site_name]

    def port(self, site_name: str) -> int:
        """The port a site is served on (the server must be started)."""
        try:
            return int(self._servers[site_name].server_address[1])
        except KeyError:
            raise KeyError(f"no site named {site_name!r} (is the server started?)") from None

    def url(self, site_name: str) -> str:
        """A site's root URL, `http://127.0.0.1:PORT/`."""
        return f"http://127.0.0.1:{self.port(site_name)}/"

    @property
    def dead_url(self) -> str:
        """A URL on a 127.0.0.1 port nothing listens on (connections are refused)."""
        if self._dead is None:
            raise RuntimeError("the site server is not started")
        return f"http://127.0.0.1:{self._dead.getsockname()[1]}/"

    def expand(self, text: str) -> str:
        """Replace `{site:NAME}` with that site's URL and `{dead}` with `dead_url`."""

        def substitute(match: re.Match[str]) -> str:
            return self.dead_url if match.group(1) == "dead" else self.url(match.group(2))

        return _PLACEHOLDER.sub(substitute, text)


def load_sites(root_dir: str | Path) -> list[Site]:
    """Every site directory directly under `root_dir` (names starting with `_` or `.` skipped)."""
    return [
        Site.from_dir(path)
        for path in sorted(Path(root_dir).iterdir())
        if path.is_dir() and not path.name.startswith(("_", "."))
    ]


def render_example_csv(template_path: str | Path, server: SiteServer) -> str:
    """The CSV template's text with `{site:NAME}` and `{dead}` replaced by live URLs."""
    return server.expand(Path(template_path).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    """Serve sites from another process (benchmarks keep them off the measured process's GIL).

    Prints one JSON line `{"urls": {name: url}, "allow_hosts": [...]}`, serves until standard
    input closes, then prints `{"hits": {name: count}}` and exits.
    """
    import argparse
    import json
    import sys

    from sheetbatch.synthetic_sites import synthetic_sites

    parser = argparse.ArgumentParser(prog="python -m sheetbatch.sites", description=main.__doc__)
    parser.add_argument("root", nargs="?", help="a directory of site folders")
    parser.add_argument("--synthetic", type=int, default=0, help="serve N generated sites")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    args = parser.parse_args(argv)
    server = SiteServer(args.root, latency=args.latency, sites=synthetic_sites(args.synthetic))
    with server:
        urls = {name: server.url(name) for name in server.sites}
        print(json.dumps({"urls": urls, "allow_hosts": server.allow_hosts}), flush=True)
        sys.stdin.read()
        print(json.dumps({"hits": {name: server.hits(name) for name in server.sites}}), flush=True)


if __name__ == "__main__":
    main()
