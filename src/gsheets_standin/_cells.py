"""Cell values: how RAW and USER_ENTERED input is stored, and how each render option reads it."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

MAX_CELL_CHARS = 50_000


@dataclass(frozen=True)
class Formula:
    """A formula as entered, e.g. "=1+1"."""

    text: str


@dataclass(frozen=True)
class RichText:
    """Text with links on parts of it (a cell whose text, or part of it, is a hyperlink).

    `runs` are (start index, link URI or None) in order, as `textFormatRuns` give them:
    each run lasts until the next one starts. `RichText("Acme site", ((0, url),))` is a
    cell that shows "Acme site" and links to `url` as a whole.
    """

    text: str
    runs: tuple[tuple[int, str | None], ...] = ()

    @classmethod
    def linked(cls, text: str, uri: str) -> RichText:
        """A cell showing `text` that links to `uri` as a whole."""
        return cls(text, ((0, uri),))

    @property
    def hyperlink(self) -> str | None:
        """The link of the whole cell: set only when one link covers all of the text."""
        links = {uri for _, uri in self.runs}
        if len(links) == 1 and self.runs and self.runs[0][0] == 0:
            return next(iter(links))
        return None


Value = str | float | bool | Formula | RichText
Cell = Value | None


class Unchanged:
    """The type of UNCHANGED."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()
"""A JSON null in a values body: leave the cell as it is."""

_NUMBER = re.compile(r"^\s*([+-]?)(\d{1,3}(?:,\d{3})+|\d+)?(\.\d*)?([eE][+-]?\d+)?\s*(%?)\s*$")

VALUE_INPUT_OPTIONS = ("RAW", "USER_ENTERED")
RENDER_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")


class InputError(ValueError):
    """A value in a request body that Sheets refuses."""


def _parse_number(text: str) -> float | None:
    match = _NUMBER.match(text)
    if match is None:
        return None
    sign, whole, frac, exp, percent = match.groups()
    if not whole and (not frac or frac == "."):
        return None
    number = float((whole or "0").replace(",", "") + (frac or "") + (exp or ""))
    if sign == "-":
        number = -number
    return number / 100 if percent else number


def parse_input(value: Any, option: str) -> Cell | Unchanged:
    """The stored cell for one JSON value of a values request under `option`.

    null leaves the cell unchanged and "" clears it. RAW keeps strings literally ("=1+1" and
    "00123" stay text); USER_ENTERED parses them as if typed into the UI.
    """
    if value is None:
        return UNCHANGED
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"Invalid value: {value}")
        return float(value)
    if not isinstance(value, str):
        raise InputError(f"Invalid values: {type(value).__name__} is not a cell value")
    if len(value) > MAX_CELL_CHARS:
        raise InputError(
            f"Your input contains more than the maximum of {MAX_CELL_CHARS} characters "
            "in a single cell."
        )
    if value == "":
        return None
    if option == "RAW":
        return value
    if value.startswith("'"):
        return value[1:] or None
    if value.startswith("=") and len(value) > 1:
        return Formula(value)
    if value.strip().upper() in ("TRUE", "FALSE"):
        return value.strip().upper() == "TRUE"
    number = _parse_number(value)
    return value if number is None else number


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


class _FormulaError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise _FormulaError("#NAME?")
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _evaluate(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise _FormulaError("#DIV/0!")
        if isinstance(node.op, ast.Pow) and (abs(right) > 1000 or abs(left) > 1e6):
            raise _FormulaError("#NUM!")
        return _BINARY[type(node.op)](left, right)
    raise _FormulaError("#NAME?")


_STRING = r'"((?:[^"]|"")*)"'
_HYPERLINK = re.compile(
    rf"^=\s*HYPERLINK\s*\(\s*{_STRING}\s*(?:[,;]\s*{_STRING}\s*)?\)\s*$", re.IGNORECASE
)


def hyperlink_of(formula: Formula) -> tuple[str, str] | None:
    """(URL, label) of `=HYPERLINK("url", "label")` with literal arguments, else None."""
    match = _HYPERLINK.match(formula.text)
    if match is None:
        return None
    url = match.group(1).replace('""', '"')
    label = match.group(2)
    return url, (url if label is None else label.replace('""', '"'))


def evaluate(formula: Formula) -> float | str:
    """The value of an arithmetic formula ("=1+2*3"), or a Sheets error code such as "#NAME?".

    The stand-in computes constant arithmetic and `=HYPERLINK("url","label")` (whose value
    is the label, or the URL when there is none); anything else reads as "#NAME?".
    """
    link = hyperlink_of(formula)
    if link is not None:
        return link[1]
    try:
        tree = ast.parse(formula.text[1:].replace("^", "**").strip(), mode="eval")
    except SyntaxError:
        return "#ERROR!"
    try:
        result = _evaluate(tree)
    except _FormulaError as exc:
        return exc.code
    except (OverflowError, ValueError):
        return "#NUM!"
    return result if math.isfinite(result) else "#NUM!"


def format_number(number: float) -> str:
    """A number as the "Automatic" format shows it: 123, 1.5, 1E+21."""
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.15g}".replace("e", "E")


def render(cell: Cell, option: str) -> Any:
    """A stored cell as values.get returns it under a valueRenderOption ("" when empty)."""
    if cell is None:
        return ""
    if isinstance(cell, Formula):
        if option == "FORMULA":
            return cell.text
        cell = evaluate(cell)
    if isinstance(cell, RichText):
        return cell.text
    if isinstance(cell, str):
        return cell
    if isinstance(cell, bool):
        if option == "FORMATTED_VALUE":
            return "TRUE" if cell else "FALSE"
        return cell
    if option == "FORMATTED_VALUE":
        return format_number(cell)
    return int(cell) if cell.is_integer() and abs(cell) < 2**53 else cell


def sort_key(cell: Cell) -> tuple[int, Any]:
    """Sheets' ascending order: numbers, then text (case-insensitive), then booleans."""
    if isinstance(cell, Formula):
        cell = evaluate(cell)
    if isinstance(cell, RichText):
        cell = cell.text
    if isinstance(cell, bool):
        return (2, cell)
    if isinstance(cell, float):
        return (0, cell)
    return (1, str(cell).casefold())


def _entered(data: dict[str, Any]) -> Cell:
    entered = data.get("userEnteredValue")
    if entered is None:
        return None
    if not isinstance(entered, dict) or len(entered) != 1:
        raise InputError("Invalid ExtendedValue: exactly one kind of value is required")
    ((kind, value),) = entered.items()
    if kind == "stringValue" and isinstance(value, str):
        if len(value) > MAX_CELL_CHARS:
            raise InputError(
                f"Your input contains more than the maximum of {MAX_CELL_CHARS} characters "
                "in a single cell."
            )
        return value or None
    if kind == "numberValue" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "boolValue" and isinstance(value, bool):
        return value
    if kind == "formulaValue" and isinstance(value, str) and value.startswith("="):
        return Formula(value)
    raise InputError(f"Invalid ExtendedValue: {kind}")


def _runs(data: dict[str, Any]) -> tuple[tuple[int, str | None], ...]:
    runs: list[tuple[int, str | None]] = []
    for run in data.get("textFormatRuns") or []:
        if not isinstance(run, dict):
            raise InputError("Invalid TextFormatRun")
        link = ((run.get("format") or {}).get("link") or {}).get("uri")
        start = run.get("startIndex") or 0
        if not isinstance(start, int) or (runs and start <= runs[-1][0]):
            raise InputError("textFormatRuns must have increasing startIndex values")
        runs.append((start, str(link) if link else None))
    return tuple(runs)


def _cell_link(data: dict[str, Any]) -> str | None:
    text_format = (data.get("userEnteredFormat") or {}).get("textFormat") or {}
    uri = (text_format.get("link") or {}).get("uri")
    return str(uri) if uri else None


def apply_cell_data(current: Cell, data: Any, fields: set[str]) -> Cell:
    """The cell after an `updateCells` CellData under the field mask `fields`.

    `userEnteredValue` sets the value; `textFormatRuns` (or a cell-wide
    `userEnteredFormat.textFormat.link`) puts links on the text.
    """
    if not isinstance(data, dict):
        raise InputError("Invalid CellData")

    def wanted(*paths: str) -> bool:
        return "*" in fields or any(p in fields for p in paths)

    cell = _entered(data) if wanted("userEnteredValue") else current
    runs: tuple[tuple[int, str | None], ...] | None = None
    if wanted("textFormatRuns"):
        runs = _runs(data)
    if wanted(
        "userEnteredFormat", "userEnteredFormat.textFormat", "userEnteredFormat.textFormat.link"
    ):
        link = _cell_link(data)
        if link is not None:
            runs = ((0, link),)
    text = cell.text if isinstance(cell, RichText) else cell
    if runs is None:
        return cell
    if not isinstance(text, str):
        return cell  # links only on text
    return RichText(text, runs) if any(uri for _, uri in runs) else text


def to_cell_data(cell: Cell) -> dict[str, Any]:
    """A stored cell as CellData: userEnteredValue, formattedValue, hyperlink, textFormatRuns."""
    if cell is None:
        return {}
    extra: dict[str, Any] = {}
    if isinstance(cell, Formula):
        entered: dict[str, Any] = {"formulaValue": cell.text}
        link = hyperlink_of(cell)
        if link is not None:
            extra["hyperlink"] = link[0]
    elif isinstance(cell, RichText):
        entered = {"stringValue": cell.text}
        if cell.hyperlink is not None:
            extra["hyperlink"] = cell.hyperlink
        extra["textFormatRuns"] = [
            {"startIndex": start, "format": {"link": {"uri": uri}} if uri else {}}
            if start
            else {"format": {"link": {"uri": uri}} if uri else {}}
            for start, uri in cell.runs
        ]
    elif isinstance(cell, bool):
        entered = {"boolValue": cell}
    elif isinstance(cell, float):
        entered = {"numberValue": cell}
    else:
        entered = {"stringValue": cell}
    return {
        "userEnteredValue": entered,
        "formattedValue": str(render(cell, "FORMATTED_VALUE")),
        **extra,
    }
