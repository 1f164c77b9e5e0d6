"""What the fetcher sends and how it decodes what comes back, against a real server on 127.0.0.1.

Compressed bodies (gzip, both spellings of deflate) are decoded, with the size cap applied to
the decoded bytes; international host names and non-ASCII paths go out encoded.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline.errors import FetchError
from pipeline.fetcher import Fetcher

PAGE = b"<html><head><title>Gzip Co</title></head><body><p>We compress.</p></body></html>"


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


BODIES: dict[str, tuple[str, bytes]] = {
    "/gzip": ("gzip", gzip.compress(PAGE)),
    "/deflate": ("deflate", zlib.compress(PAGE)),
    "/raw-deflate": ("deflate", _raw_deflate(PAGE)),
    "/bomb": ("gzip", gzip.compress(b"<html>" + b" " * 50_000_000)),
    "/brotli": ("br", b"\x0b\x02\x80hello\x03"),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path in BODIES:
            encoding, body = BODIES[self.path]
            extra = [("Content-Encoding", encoding)]
        else:  # echo what arrived
            body = f"<html><body>{self.path} {self.headers['Host']}</body></html>".encode()
            extra = []
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _resolve(host: str, port: int) -> list[str]:
    if host == "xn--bcher-kva.test":
        return ["127.0.0.1"]
    raise OSError(f"unknown {host}")


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(allow_hosts=["127.0.0.0/8"], resolve=_resolve, max_bytes=1024 * 1024) as f:
        yield f


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/raw-deflate"])
def test_compressed_pages_are_decoded(fetcher: Fetcher, port: int, path: str) -> None:
    page = fetcher.get(f"http://127.0.0.1:{port}{path}")
    assert "We compress." in page.text
    assert page.headers["content-encoding"]


def test_the_size_cap_applies_to_the_decoded_body(fetcher: Fetcher, port: int) -> None:
    # 50 MB of blanks compress to ~50 KB: the cap (1 MB here) must stop the inflating.
    with pytest.raises(FetchError) as info:
        fetcher.get(f"http://127.0.0.1:{port}/bomb")
    assert info.value.reason == "page too large (> 1 MB)"


def test_an_encoding_we_did_not_ask_for_is_refused(fetcher: Fetcher, port: int) -> None:
    with pytest.raises(FetchError) as info:
        fetcher.get(f"http://127.0.0.1:{port}/brotli")
    assert info.value.reason == "unsupported content encoding 'br'"


def test_international_names_and_paths_go_out_encoded(fetcher: Fetcher, port: int) -> None:
    page = fetcher.get(f"http://Bücher.test:{port}/über uns?q=ä#frag")
    assert page.url == f"http://xn--bcher-kva.test:{port}/%C3%BCber%20uns?q=%C3%A4"
    assert f"/%C3%BCber%20uns?q=%C3%A4 xn--bcher-kva.test:{port}" in page.text


def test_an_invalid_international_name_is_a_clear_error(fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as info:
        fetcher.get("http://bad\u200d\u200dname.test/")
    assert info.value.reason.startswith("invalid host name")
