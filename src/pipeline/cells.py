"""What a scraped value may look like once it is stored or written into a sheet cell.

Scraped text is untrusted: a page can put 100,000 characters in its name (pushing the
dashboard's columns off-screen, bloating every snapshot and the sheet) or a right-to-left
override (`\\u202egnp.exe` shows as `exe.png`). Every such value is cleaned before it is
stored: the bidi embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069)
are removed, and the text is capped at `MAX_CELL` characters, ending with `…` when cut.
"""

from __future__ import annotations

MAX_CELL = 2000
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_STRIP = str.maketrans("", "", BIDI_CONTROLS)


def clean_text(text: str, limit: int = MAX_CELL) -> str:
    """`text` without bidi controls, at most `limit` characters (cut ones end with `…`)."""
    cleaned = text.translate(_STRIP)
    if len(cleaned) > limit:
        return cleaned[: limit - 1] + "…"
    return cleaned
