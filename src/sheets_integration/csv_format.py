"""How a CSV file spells its records: delimiter, quoting, line terminators, `sep=` line.

Shared by the parsed document (`csv_sheet`) and the streamed write (`csv_stream`), so a
record either of them re-serialises is spelled the same way.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Literal

Quoting = Literal[0, 1]  # csv.QUOTE_MINIMAL, csv.QUOTE_ALL

DELIMITERS = ",;\t|"
NEWLINE = re.compile(r"\r\n|\r|\n")
#: Excel's "sep=;" first line: names the delimiter and is not part of the table.
SEP_LINE = re.compile(r"sep=(.)(?:\r\n|\r|\n|$)")
UTF8 = frozenset({"utf-8", "utf-8-sig"})


def terminator(raw: str) -> str:
    """The line terminator a record's raw text ends with ("" for a last line without one)."""
    if raw.endswith("\r\n"):
        return "\r\n"
    if raw.endswith(("\r", "\n")):
        return raw[-1]
    return ""


def sniff_delimiter(text: str) -> str:
    """The candidate delimiter that splits the header line into the most fields (else ",")."""
    found = NEWLINE.search(text)
    line = text[: found.start()] if found else text
    best, best_count = ",", 1
    for delimiter in DELIMITERS:
        count = len(next(csv.reader([line], delimiter=delimiter), []))
        if count > best_count:
            best, best_count = delimiter, count
    return best


def format_record(fields: list[str], delimiter: str, quoting: Quoting) -> str:
    """`fields` as one record's text, without its line terminator."""
    buffer = io.StringIO()
    # A "\r\n" terminator makes the writer quote fields holding either character.
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerow(fields)
    return buffer.getvalue()[:-2]


def sniff_quoting(header: list[str], raw: str, delimiter: str) -> Quoting:
    """QUOTE_ALL when the header record (`raw`, as the file spells it) quotes every field."""
    raw = raw[: len(raw) - len(terminator(raw))]
    if (
        format_record(header, delimiter, csv.QUOTE_ALL)
        == raw
        != format_record(header, delimiter, csv.QUOTE_MINIMAL)
    ):
        return csv.QUOTE_ALL
    return csv.QUOTE_MINIMAL
