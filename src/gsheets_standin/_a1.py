"""A1 notation: parsing request ranges and formatting grid-bounded response ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_COLUMNS = 18278  # ZZZ
_CELL = re.compile(r"^\$?([A-Za-z]{0,3})\$?(\d{0,8})$")
_PLAIN_TITLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Box:
    """A rectangle of a sheet, 0-based and half-open; an end of None runs to the grid's edge."""

    row0: int
    col0: int
    row1: int | None
    col1: int | None

    def clamp(self, rows: int, cols: int) -> tuple[int, int, int, int]:
        """(row0, col0, row1, col1) with open ends closed at the grid size."""
        row1 = rows if self.row1 is None else self.row1
        col1 = cols if self.col1 is None else self.col1
        return self.row0, self.col0, row1, col1

    def fits(self, rows: int, cols: int) -> bool:
        """Whether the bounded sides lie inside a grid of `rows` x `cols`."""
        return (
            self.row0 < max(rows, 1)
            and self.col0 < max(cols, 1)
            and (self.row1 is None or self.row1 <= rows)
            and (self.col1 is None or self.col1 <= cols)
        )


@dataclass(frozen=True)
class A1Range:
    """A parsed range: a sheet title (None: the first sheet) and a box (None: the whole sheet).

    `ref` keeps the part after `!` as written, for error messages.
    """

    sheet: str | None
    box: Box | None
    text: str
    ref: str = ""


def column_letters(index: int) -> str:
    """A 0-based column index as letters: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """Column letters to a 0-based index: A -> 0, AA -> 26."""
    value = 0
    for ch in letters.upper():
        value = value * 26 + (ord(ch) - 64)
    return value - 1


def quote_title(title: str) -> str:
    """A sheet title as Google writes it in a range: bare when plain, else single-quoted."""
    if _PLAIN_TITLE.match(title) and not _CELL.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def format_range(title: str, row0: int, col0: int, row1: int, col1: int) -> str:
    """`Sheet1!A1:C3`, or `Sheet1!B2` for a single cell."""
    start = f"{column_letters(col0)}{row0 + 1}"
    end = f"{column_letters(max(col1 - 1, col0))}{max(row1, row0 + 1)}"
    ref = start if start == end else f"{start}:{end}"
    return f"{quote_title(title)}!{ref}"


def _cell(part: str) -> tuple[int | None, int | None]:
    match = _CELL.match(part.strip())
    if match is None or not (match.group(1) or match.group(2)):
        raise ValueError(part)
    letters, digits = match.groups()
    col = column_index(letters) if letters else None
    row = int(digits) - 1 if digits else None
    if (row is not None and row < 0) or (col is not None and col >= MAX_COLUMNS):
        raise ValueError(part)
    return col, row


def parse_ref(ref: str) -> Box | None:
    """The box of `A1`, `A1:C3`, `A:C`, `2:5`, `A5:C`, or None when `ref` is not A1 notation."""
    try:
        parts = ref.split(":")
        if len(parts) == 1:
            col, row = _cell(parts[0])
            if col is None or row is None:
                return None
            return Box(row, col, row + 1, col + 1)
        if len(parts) != 2:
            return None
        (c1, r1), (c2, r2) = _cell(parts[0]), _cell(parts[1])
    except ValueError:
        return None
    if c1 is not None and c2 is not None:
        col0, col1 = min(c1, c2), max(c1, c2) + 1
    elif c1 is None and c2 is None:
        col0, col1 = 0, None
    elif c1 is not None and r1 is not None and r2 is not None:
        col0, col1 = c1, None  # "A1:5"
    elif c2 is not None and r1 is not None and r2 is not None:
        col0, col1 = 0, c2 + 1  # "1:B5"
    else:
        return None
    if r1 is not None and r2 is not None:
        row0, row1 = min(r1, r2), max(r1, r2) + 1
    elif r1 is None and r2 is None:
        if c1 is None or c2 is None:
            return None
        row0, row1 = 0, None  # "A:C"
    elif r1 is not None and c1 is not None and c2 is not None:
        row0, row1 = r1, None  # "A5:C"
    elif r2 is not None and c1 is not None and c2 is not None:
        row0, row1 = 0, r2 + 1  # "A:C5"
    else:
        return None
    if c1 is None and c2 is None and (r1 is None or r2 is None):
        return None
    return Box(row0, col0, row1, col1)


def parse_a1(text: str) -> A1Range:
    """Parse `'My Sheet'!A1:C3`, `Sheet1!A:B`, `Sheet1`, `A1:B2`; raise ValueError if malformed.

    A range without `!` is a box on the first sheet when it reads as A1 notation, otherwise
    a sheet title (resolved, or refused, by the caller).
    """
    s = text.strip()
    if not s:
        raise ValueError(text)
    if s.startswith("'"):
        name: list[str] = []
        i = 1
        while True:
            j = s.find("'", i)
            if j < 0:
                raise ValueError(text)
            name.append(s[i:j])
            if s[j + 1 : j + 2] == "'":
                name.append("'")
                i = j + 2
                continue
            i = j + 1
            break
        sheet = "".join(name)
        rest = s[i:]
        if not rest:
            return A1Range(sheet, None, text)
        if not rest.startswith("!"):
            raise ValueError(text)
        box = parse_ref(rest[1:])
        if box is None:
            raise ValueError(text)
        return A1Range(sheet, box, text, rest[1:])
    if "!" in s:
        sheet, _, ref = s.rpartition("!")
        box = parse_ref(ref)
        if box is None or not sheet:
            raise ValueError(text)
        return A1Range(sheet, box, text, ref)
    box = parse_ref(s)
    if box is not None:
        return A1Range(None, box, text, s)
    return A1Range(s, None, text)
