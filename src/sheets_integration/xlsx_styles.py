"""`Styles`: the workbook's cell formats, read for number formats and extended for quote prefixes.

A cell's `s` attribute indexes `<cellXfs>` in the styles part. Reading needs each format's
number format (is 36220 a date?) and whether it carries Excel's quote prefix; writing
formula-like text needs a format equal to the cell's own plus `quotePrefix="1"`, which is
appended to `<cellXfs>` when the workbook has none yet. Everything else in the part is
kept byte for byte.
"""

from __future__ import annotations

import logging
import re

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

from sheets_integration.xlsx_markup import PREFIX
from sheets_integration.xlsx_package import local, parse_xml

log = logging.getLogger(__name__)

_CELL_XFS_START = re.compile(rb"<" + PREFIX + rb"cellXfs\b[^>]*?(/?)>")
_CELL_XFS_END = re.compile(rb"</" + PREFIX + rb"cellXfs\s*>")
_XF = re.compile(rb"<(" + PREFIX + rb"xf)\b[^>]*?(?:/>|>.*?</" + PREFIX + rb"xf\s*>)", re.DOTALL)
_QUOTE_PREFIX = re.compile(rb"""\s+quotePrefix\s*=\s*(?:"[^"]*"|'[^']*')""")
_COUNT = re.compile(rb"""(\scount\s*=\s*)(?:"[^"]*"|'[^']*')""")
_TRUE = frozenset({"1", "true"})


class Styles:
    """The cell formats of a workbook's styles part (`data`; None when it has none)."""

    def __init__(self, data: bytes | None, part: str, sheet: str) -> None:
        self.data, self.part = data, part
        self.changed = False
        self._codes: list[str] = []
        self._quoted: list[bool] = []
        self._raw: list[bytes] = []
        self._variants: dict[tuple[int, bool], int] = {}
        self._dates: dict[int, str] = {}
        if data is None:
            return
        root = parse_xml(data, part, sheet)
        custom: dict[int, str] = {}
        for element in root.iter():
            if local(element.tag) == "numFmt":
                custom[_int(element.get("numFmtId"))] = element.get("formatCode", "")
        for element in root:
            if local(element.tag) == "cellXfs":
                for xf in element:
                    if local(xf.tag) == "xf":
                        number = _int(xf.get("numFmtId"))
                        self._codes.append(custom.get(number, BUILTIN_FORMATS.get(number, "")))
                        self._quoted.append(xf.get("quotePrefix", "0").lower() in _TRUE)
        self._raw = self._raw_xfs()

    def number_format(self, xf: int) -> str:
        """The number format code of format `xf` ("General" when it names none)."""
        code = self._codes[xf] if 0 <= xf < len(self._codes) else ""
        return code or "General"

    def kind(self, xf: int) -> str:
        """How a number in format `xf` reads: "date", "timedelta" or "number"."""
        found = self._dates.get(xf)
        if found is None:
            code = self.number_format(xf)
            found = (
                "timedelta"
                if is_timedelta_format(code)
                else "date"
                if is_date_format(code)
                else "number"
            )
            self._dates[xf] = found
        return found

    def quoted(self, xf: int) -> bool:
        """True when format `xf` carries the quote prefix ("this is text, not a formula")."""
        return 0 <= xf < len(self._quoted) and self._quoted[xf]

    def variant(self, xf: int, *, quoted: bool) -> int:
        """A format equal to `xf` with (or without) the quote prefix: found, else appended.

        Returns `xf` itself when it already is that, or when the styles part cannot take a
        new format (none, or one this reader does not understand): the value is still
        written as text, only without the prefix.
        """
        if self.quoted(xf) == quoted:
            return xf
        key = (xf, quoted)
        if key in self._variants:
            return self._variants[key]
        if not 0 <= xf < len(self._raw):
            return xf
        base = _QUOTE_PREFIX.sub(b"", self._raw[xf])
        for index, raw in enumerate(self._raw):
            if self._quoted[index] == quoted and _QUOTE_PREFIX.sub(b"", raw) == base:
                self._variants[key] = index
                return index
        if not quoted:
            return xf
        name = _XF.match(base)
        assert name is not None  # `base` is one of the elements `_XF` found
        added = base[: name.end(1)] + b' quotePrefix="1"' + base[name.end(1) :]
        self._append(added, self._codes[xf])
        self._variants[key] = len(self._raw) - 1
        return len(self._raw) - 1

    def _raw_xfs(self) -> list[bytes]:
        """The `<xf>` elements of `<cellXfs>` as bytes; [] when they cannot be told apart."""
        assert self.data is not None
        start = _CELL_XFS_START.search(self.data)
        if start is None or start.group(1):
            return []
        end = _CELL_XFS_END.search(self.data, start.end())
        if end is None:
            return []
        raw = [m.group(0) for m in _XF.finditer(self.data, start.end(), end.start())]
        if len(raw) != len(self._codes):
            log.debug("%s: cellXfs not understood; quote prefixes are not added", self.part)
            return []
        return raw

    def _append(self, xf: bytes, code: str) -> None:
        assert self.data is not None
        start = _CELL_XFS_START.search(self.data)
        end = _CELL_XFS_END.search(self.data, start.end()) if start else None
        assert start is not None and end is not None  # `_raw_xfs` found both
        count = str(len(self._raw) + 1).encode()
        head = _COUNT.sub(lambda m: m.group(1) + b'"' + count + b'"', start.group(0), count=1)
        self.data = b"".join(
            (
                self.data[: start.start()],
                head,
                self.data[start.end() : end.start()],
                xf,
                self.data[end.start() :],
            )
        )
        self._raw.append(xf)
        self._codes.append(code)
        self._quoted.append(True)
        self.changed = True


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
