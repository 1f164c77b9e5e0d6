"""SpreadsheetML elements read and edited as bytes, for the parts edited in place.

The editors (`xlsx_splice`, `xlsx_styles`, `xlsx_package`) never rebuild a part: they find
the few elements they change with these expressions and leave every other byte alone.
Element names may carry a namespace prefix (`<x:c>`); attribute values may be quoted with
either quote; text is decoded from XML's five entities and character references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = rb"(?:[\w.-]+:)?"  # an optional namespace prefix
CELL = re.compile(rb"<(" + PREFIX + rb")c\b([^>]*?)(?:/>|>(.*?)</" + PREFIX + rb"c\s*>)", re.DOTALL)
FORMULA = re.compile(
    rb"<" + PREFIX + rb"f\b([^>]*?)(?:/>|>(.*?)</" + PREFIX + rb"f\s*>)", re.DOTALL
)
_ATTR = re.compile(rb"""([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_VALUE = re.compile(rb"<" + PREFIX + rb"v\b[^>]*?(?:/>|>(.*?)</" + PREFIX + rb"v\s*>)", re.DOTALL)
_INLINE = re.compile(rb"<" + PREFIX + rb"is\b")
_TEXT = re.compile(rb"<" + PREFIX + rb"t\b[^>]*?(?:/>|>(.*?)</" + PREFIX + rb"t\s*>)", re.DOTALL)
_PHONETIC = re.compile(rb"<" + PREFIX + rb"rPh\b.*?</" + PREFIX + rb"rPh\s*>", re.DOTALL)
_ENTITY = re.compile(r"&(?:#(\d+)|#x([0-9A-Fa-f]+)|(amp|lt|gt|quot|apos));")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_SPACE = frozenset(b" \t\r\n")


def attr(attrs: bytes, name: bytes) -> str | None:
    """The decoded value of attribute `name` in a start tag's attribute bytes, or None."""
    if b"'" not in attrs and b" =" not in attrs and b"= " not in attrs:
        # The way every writer spells it (name="value"): found without the expression,
        # which a streamed write of 500,000 rows would run millions of times.
        key = name + b'="'
        at = attrs.find(key)
        while at >= 0:
            if at == 0 or attrs[at - 1] in _SPACE:
                start = at + len(key)
                end = attrs.find(b'"', start)
                return unxml(attrs[start:end]) if end >= 0 else None
            at = attrs.find(key, at + 1)
        return None
    for match in _ATTR.finditer(attrs):
        if match.group(1) == name:
            value = match.group(2) if match.group(2) is not None else match.group(3)
            return unxml(value)
    return None


def set_attr(attrs: bytes, name: bytes, value: bytes) -> bytes:
    """Attribute bytes with `name` set to `value` (replaced in place, else appended)."""
    for match in _ATTR.finditer(attrs):
        if match.group(1) == name:
            return attrs[: match.start()] + name + b'="' + value + b'"' + attrs[match.end() :]
    return attrs + b" " + name + b'="' + value + b'"'


def unxml(raw: bytes) -> str:
    """Element text or an attribute value as the characters it stands for."""
    text = raw.decode("utf-8")
    if "&" not in text:
        return text

    def entity(match: re.Match[str]) -> str:
        if match.group(3):
            return _NAMED[match.group(3)]
        return chr(int(match.group(1)) if match.group(1) else int(match.group(2), 16))

    return _ENTITY.sub(entity, text)


def column_index(ref: str) -> int:
    """The 1-based column of a cell reference: "C7" -> 3, "$AA$1" -> 27."""
    number = 0
    for char in ref.lstrip("$").upper():
        if not "A" <= char <= "Z":
            break
        number = number * 26 + ord(char) - 64
    return number


@dataclass(frozen=True)
class RawCell:
    """A `<c>` element as it stands in the part: its start-tag attributes and content."""

    attrs: bytes
    body: bytes

    @classmethod
    def of(cls, raw: bytes) -> RawCell:
        """The cell `raw` (one whole `<c>` element)."""
        found = CELL.match(raw)
        if found is None:
            raise ValueError(f"not a <c> element: {raw[:60]!r}")
        return cls(found.group(2), found.group(3) or b"")

    @property
    def style(self) -> int:
        """Its cell format index (`s`), 0 when absent."""
        style = attr(self.attrs, b"s")
        return int(style) if style and style.isdigit() else 0

    @property
    def kind(self) -> str:
        """Its value type (`t`): "n" (number, the default), "s", "inlineStr", "str", "b", …"""
        return attr(self.attrs, b"t") or "n"

    @property
    def formula(self) -> re.Match[bytes] | None:
        """Its `<f>` element, if it holds a formula."""
        return FORMULA.search(self.body)

    @property
    def value(self) -> str | None:
        """The text of its `<v>`, or None without one."""
        found = _VALUE.search(self.body)
        return None if found is None else unxml(found.group(1) or b"")

    @property
    def has_inline(self) -> bool:
        """True when it holds an inline string (`<is>`)."""
        return _INLINE.search(self.body) is not None

    @property
    def inline_text(self) -> str:
        """The text of its inline string: every run's `<t>`, phonetic guides left out."""
        body = _PHONETIC.sub(b"", self.body)
        return "".join(unxml(t.group(1) or b"") for t in _TEXT.finditer(body))
