"""Cell values of SpreadsheetML as text, and the XML of the cells we write.

Reading shows what the user sees as closely as a plain reader can: text as stored
("00123" stays "00123"), formulas as their text ("=SUM(A1:A3)", never a cached result),
except `=HYPERLINK(url, label)`, which shows the label it displays when the file holds it;
whole numbers without ".0", numbers in simple formats ("0.00", "#,##0", "0%", "00000")
formatted by them, dates and times in ISO 8601, booleans as TRUE/FALSE, errors as their code.

Writing makes a text value an inline string cell (never a formula or error code, whatever
it starts with) and a number a numeric cell, so SUM and sorting work.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from xml.sax.saxutils import escape

from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH, from_excel

from sheets_integration.safety import clip
from sheets_integration.sheet import CellValue

# Characters XML 1.0 cannot hold (and lone surrogates, which UTF-8 cannot): dropped on write.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# OOXML strings escape characters as _xHHHH_; a literal "_x0041_" is written "_x005F_x0041_".
_XSTRING_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
# A "simple" number format: digits placeholders, optional thousands, decimals, percent.
_SIMPLE_FORMAT = re.compile(r"(?P<int>[#0,]*)(?:\.(?P<frac>0+))?(?P<pct>%?)")
_GENERAL = frozenset({"", "general", "@"})
# =HYPERLINK("url") or =HYPERLINK("url", label), as Excel (_xlfn., any case) or LibreOffice
# (";" between arguments) may write it; the label may be a string, a number or a reference.
_HYPERLINK = re.compile(
    r'\s*=?\s*(?:_xlfn\.)?HYPERLINK\s*\(\s*"((?:[^"]|"")*)"\s*'
    r'(?:[,;]\s*(?:"(?:[^"]|"")*"|[^"(),;]*)\s*)?\)\s*',
    re.IGNORECASE,
)
# Excel keeps 15 significant digits; a longer whole number would silently lose its last ones.
_EXACT_INTEGER = 10**15


def unescape_xstring(text: str) -> str:
    """`text` with OOXML's _xHHHH_ escapes decoded (how Excel shows the string)."""
    if "_x" not in text:
        return text
    return _XSTRING_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def hyperlink_target(formula: str) -> str | None:
    """The URL of a `=HYPERLINK("url", ...)` formula (with or without "="), else None."""
    match = _HYPERLINK.fullmatch(formula)
    return match.group(1).replace('""', '"') if match else None


def date_text(value: dt.datetime | dt.date | dt.time | dt.timedelta, number_format: str) -> str:
    """A date or time as ISO 8601; a datetime at midnight in a date-only format as its date."""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time() and not _has_time(number_format):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def serial_text(raw: str, kind: str, number_format: str, date1904: bool) -> str:
    """A numeric cell's stored text as it reads: a number, or a date/time by its format."""
    number = parse_number(raw)
    if number is None:
        return raw
    if kind != "number" and isinstance(number, int | float):
        epoch = MAC_EPOCH if date1904 else WINDOWS_EPOCH
        try:
            moment = from_excel(number, epoch, timedelta=kind == "timedelta")
        except (OverflowError, ValueError):
            return number_text(number, number_format)
        return date_text(moment, number_format)
    return number_text(number, number_format)


def iso_text(raw: str, number_format: str) -> str:
    """A `t="d"` cell (an ISO 8601 string) as it reads."""
    try:
        moment = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return raw
    return date_text(moment.replace(tzinfo=None), number_format)


def parse_number(raw: str) -> int | float | None:
    """The number a `<v>` holds: an int when written without point or exponent, as openpyxl."""
    text = raw.strip()
    try:
        if any(c in text for c in ".eE"):
            return float(text)
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def number_text(value: float, number_format: str) -> str:
    """`value` in a simple number format, else as Excel's General format shows it."""
    section = number_format.split(";")[0]
    simple = _SIMPLE_FORMAT.fullmatch(section)
    if number_format.lower() in _GENERAL or simple is None or (value < 0 and ";" in number_format):
        return _general(value)
    integer, decimals = simple.group("int"), len(simple.group("frac") or "")
    if not integer and not decimals:
        return _general(value)
    if simple.group("pct"):
        value *= 100
    text = f"{abs(value):,.{decimals}f}" if "," in integer else f"{abs(value):.{decimals}f}"
    whole, point, fraction = text.partition(".")
    digits = integer.count("0")
    if digits == 0 and whole == "0":
        whole = ""
    elif "," not in integer:
        whole = whole.zfill(digits)
    text = whole + point + fraction + simple.group("pct")
    return "-" + text if value < 0 and any(c in "123456789" for c in text) else text


def _general(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    # Excel keeps 15 significant digits: 0.1 + 0.2 shows as 0.3.
    return format(value, ".15g")


def _has_time(number_format: str) -> bool:
    return any(part in number_format.lower() for part in ("h", "s", "am/pm"))


# --- writing ---------------------------------------------------------------------------------


def written_text(value: str) -> str:
    """A text value as it is stored: clipped to Excel's cell limit, XML-illegal characters gone."""
    return _ILLEGAL_XML.sub("", clip(value))


def numeric(value: CellValue) -> bool:
    """True when `value` is written as a numeric cell: a finite number Excel holds exactly.

    Text, NaN/infinity (no spreadsheet number) and whole numbers of 16 digits or more
    (Excel would drop their last digits) are written as text.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return abs(value) < _EXACT_INTEGER
    return math.isfinite(value)


def number_xml(value: int | float) -> str:
    """A number as `<v>` text: the shortest form that reads back as the same number."""
    if isinstance(value, int):
        return str(value)
    return repr(value) if not value.is_integer() or abs(value) >= 1e15 else str(int(value))


def cell_xml(prefix: str, ref: str, style: int | None, value: CellValue) -> str:
    """A `<c>` element holding `value` (a number, or text as an inline string), or "" when
    `value` is empty text and the cell keeps no style (the cell is then left out)."""
    style_attr = f' s="{style}"' if style else ""
    if numeric(value):
        assert not isinstance(value, str)
        number = number_xml(value)
        return f'<{prefix}c r="{ref}"{style_attr}><{prefix}v>{number}</{prefix}v></{prefix}c>'
    text = written_text(value) if isinstance(value, str) else str(value)
    if text == "":
        return f'<{prefix}c r="{ref}"{style_attr}/>' if style_attr else ""
    body = escape(_XSTRING_ESCAPE.sub(r"_x005F_x\1_", text)).replace("\r", "&#13;")
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return (
        f'<{prefix}c r="{ref}"{style_attr} t="inlineStr"><{prefix}is>'
        f"<{prefix}t{space}>{body}</{prefix}t></{prefix}is></{prefix}c>"
    )
