"""Emails and phone numbers in page text: finding, validating and deduplicating them.

Pure functions, no I/O; `extract` calls them for every page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_FILE_SUFFIXES = frozenset(
    [
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "webp",
        "avif",
        "ico",
        "bmp",
        "tif",
        "tiff",
        "css",
        "js",
        "mjs",
        "json",
        "map",
        "pdf",
        "mp4",
        "webm",
        "mov",
        "mp3",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "zip",
        "gz",
    ]
)
_PLACEHOLDER_DOMAINS = frozenset({"example.com", "example.org", "example.net", "domain.com"})
# An address as written (group 1: local part, group 2: domain).
EMAIL = re.compile(
    r"(?<![\w.%+-])([a-z0-9][a-z0-9._%+-]{0,63})@((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"[a-z]{2,24})(?![\w-])",
    re.IGNORECASE,
)
_AT = r"\s*(?:\[\s*at\s*\]|\(\s*at\s*\)|\{\s*at\s*\}|<\s*at\s*>)\s*"
_DOT = r"(?:\s*(?:\[\s*dot\s*\]|\(\s*dot\s*\)|\{\s*dot\s*\}|<\s*dot\s*>)\s*|\.)"
_OBFUSCATED = re.compile(
    rf"(?<![\w.+-])([a-z0-9][a-z0-9_%+-]*(?:{_DOT}[a-z0-9_%+-]+)*){_AT}"
    rf"([a-z0-9-]+(?:{_DOT}[a-z0-9-]+)+)",
    re.IGNORECASE,
)
# "name at site dot com" is only an address when the whole of it sits in brackets.
_WORDY = re.compile(
    r"[(\[{<]\s*([a-z0-9][a-z0-9._%+-]*)\s+at\s+([a-z0-9-]+(?:\s+dot\s+[a-z0-9-]+)+)\s*[)\]}>]",
    re.IGNORECASE,
)
_DOT_WORD = re.compile(_DOT + r"|\s+dot\s+", re.IGNORECASE)


def find_emails(text: str) -> list[str]:
    """Email addresses in plain text, including `name [at] site [dot] com`-style obfuscations.

    The wordy form `name at site dot com` counts only when the whole address is bracketed.
    Results are lower-cased, validated, deduplicated, in order of appearance.
    """
    found: list[tuple[int, str]] = []
    for match in EMAIL.finditer(text):
        found.append((match.start(), f"{match.group(1)}@{match.group(2)}"))
    for match in _OBFUSCATED.finditer(text):
        local = _DOT_WORD.sub(".", match.group(1))
        found.append((match.start(), f"{local}@{_DOT_WORD.sub('.', match.group(2))}"))
    for match in _WORDY.finditer(text):
        found.append((match.start(), f"{match.group(1)}@{_DOT_WORD.sub('.', match.group(2))}"))
    valid = (valid_email(email) for _, email in sorted(found))
    return list(dict.fromkeys(email for email in valid if email))


def valid_email(raw: str) -> str | None:
    """`raw` as a plausible address (lower-cased), or None for file names, placeholders
    and tracking ids."""
    email = raw.strip().strip("<>.,;:").lower()
    match = EMAIL.fullmatch(email)
    if match is None:
        return None
    local, domain = match.group(1), match.group(2)
    if ".." in local or local.endswith(".") or domain.rsplit(".", 1)[1] in _FILE_SUFFIXES:
        return None  # "logo@2x.png", "bg@retina.jpg"
    if domain in _PLACEHOLDER_DOMAINS or re.fullmatch(r"[0-9a-f]{24,}", local):
        return None  # placeholders and tracking ids (sentry keys)
    return email


def dedupe_phones(phones: Sequence[str]) -> list[str]:
    """Phone numbers tidied, of a plausible length (6-15 digits), each number once."""
    seen: set[str] = set()
    result: list[str] = []
    for raw in phones:
        phone = re.sub(r"\s+", " ", raw).strip()
        phone = re.sub(r"[^0-9+()./ -]", "", phone).strip(" -./")
        digits = re.sub(r"\D", "", phone)
        if not 6 <= len(digits) <= 15:
            continue
        key = digits.removeprefix("00") if phone.startswith("00") else digits
        if key not in seen:
            seen.add(key)
            result.append(phone)
    return result
