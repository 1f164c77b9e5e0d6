"""Response bodies as the fetcher reads them: content type and charset, whether bytes look
like HTML, and the decompressors for the Content-Encodings it asks for. Pure helpers."""

from __future__ import annotations

import codecs
import re
import zlib
from typing import Any

from pipeline.errors import FetchError


def too_large(limit: int) -> str:
    """The failure reason of a body over `limit` bytes."""
    if limit % (1024 * 1024) == 0:
        return f"page too large (> {limit // (1024 * 1024)} MB)"
    return f"page too large (> {limit} bytes)"


def content_type(header: str) -> tuple[str, str]:
    """(mime type, charset) of a Content-Type header ("" for what it does not say)."""
    mime, _, params = header.partition(";")
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", params, re.IGNORECASE)
    return mime.strip().lower(), match.group(1) if match else ""


def looks_like_html(body: bytes) -> bool:
    """Whether a body without a Content-Type starts like an HTML document."""
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--"))


def encoding_of(charset: str, body: bytes) -> str:
    """The codec to decode `body` with: a BOM, the header's charset, a <meta> charset, UTF-8."""
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    candidates = [charset]
    match = re.search(rb"<meta[^>]+charset\s*=\s*[\"']?([\w.:-]+)", body[:4096], re.IGNORECASE)
    if match:
        candidates.append(match.group(1).decode("ascii", "replace"))
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return codecs.lookup(candidate).name
        except LookupError:
            continue
    return "utf-8"


def decompressor(encoding: str) -> Any:
    """A zlib decompressor for a Content-Encoding we asked for, None for none; else refuse."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return Deflate()
    raise FetchError(f"unsupported content encoding {encoding[:40]!r}")


class Deflate:
    """HTTP "deflate": zlib-wrapped per the RFC, raw deflate from some servers."""

    def __init__(self) -> None:
        self._inner: Any = None
        self.unconsumed_tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            zlib_wrapped = (
                len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] << 8 | data[1]) % 31 == 0
            )
            self._inner = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        out: bytes = self._inner.decompress(data, max_length)
        self.unconsumed_tail = self._inner.unconsumed_tail
        return out

    def flush(self) -> bytes:
        return b"" if self._inner is None else bytes(self._inner.flush())
