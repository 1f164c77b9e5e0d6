"""A1 notation as the stand-in reads and writes it."""

from __future__ import annotations

import pytest

from gsheets_standin import column_letters, format_range, parse_a1, quote_title
from gsheets_standin._a1 import Box


@pytest.mark.parametrize(
    ("text", "sheet", "box"),
    [
        ("A1", None, Box(0, 0, 1, 1)),
        ("B2:C3", None, Box(1, 1, 3, 3)),
        ("C3:B2", None, Box(1, 1, 3, 3)),
        ("a1:b2", None, Box(0, 0, 2, 2)),
        ("$A$1:$B$2", None, Box(0, 0, 2, 2)),
        ("A:C", None, Box(0, 0, None, 3)),
        ("2:5", None, Box(1, 0, 5, None)),
        ("A5:C", None, Box(4, 0, None, 3)),
        ("Sheet1", "Sheet1", None),
        ("Sheet1!A1:B2", "Sheet1", Box(0, 0, 2, 2)),
        ("'My Sheet'!A1:C3", "My Sheet", Box(0, 0, 3, 3)),
        ("'It''s'!D:D", "It's", Box(0, 3, None, 4)),
        ("'My Sheet'", "My Sheet", None),
    ],
)
def test_parse_a1(text: str, sheet: str | None, box: Box | None) -> None:
    parsed = parse_a1(text)
    assert (parsed.sheet, parsed.box) == (sheet, box)


@pytest.mark.parametrize("text", ["", "'unclosed!A1", "'Sheet1'A1", "Sheet1!", "X!ZZZZ1", "X!A0"])
def test_malformed_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_a1(text)


def test_formatting_quotes_titles_only_when_needed() -> None:
    assert format_range("Sheet1", 0, 0, 1000, 26) == "Sheet1!A1:Z1000"
    assert format_range("My Sheet", 1, 1, 2, 2) == "'My Sheet'!B2"
    assert quote_title("It's") == "'It''s'"
    assert quote_title("A1") == "'A1'"
    assert [column_letters(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
