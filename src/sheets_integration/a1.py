"""A1 names of cells, as spreadsheet programs show them in messages ("E2", "AA10")."""

from __future__ import annotations


def column_letter(index: int) -> str:
    """The A1 letters of a 0-based column index: 0 -> "A", 26 -> "AA"."""
    letters = ""
    number = index + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def cell_name(row: int, column: int) -> str:
    """The A1 name of data row `row` (sheet row `row + 2`) in 0-based `column`: "E2"."""
    return f"{column_letter(column)}{row + 2}"
