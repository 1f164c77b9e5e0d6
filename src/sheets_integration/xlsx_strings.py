"""`SharedStrings`: a workbook's shared string table, kept on disk rather than as a list.

A workbook of 500,000 rows saved by Excel or openpyxl holds most of its text in the shared
strings part: a million strings and more, ~100 MB as a `list[str]`. The table is read once,
streamed (`iterparse`, each `<si>` dropped once read), into a `SpilledRows`, which keeps
8 bytes a string in memory and the strings in a temporary file; cells are looked up in
sheet order, which is mostly the table's own order, so its read-ahead serves them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload
from xml.etree import ElementTree

from sheets_integration.errors import BadSheet
from sheets_integration.spilled_rows import SpilledRows
from sheets_integration.xlsx_cells import unescape_xstring
from sheets_integration.xlsx_package import Package, local

_HINT = "open it in Excel or LibreOffice and save it again as .xlsx"


class SharedStrings(Sequence[str]):
    """The shared strings, by index, as their text (rich text runs joined, phonetic guides
    left out); read from the package when first asked for (a write into cells we wrote
    ourselves, inline strings, never asks)."""

    def __init__(self, package: Package, part: str | None, sheet: str) -> None:
        self._package, self._part, self._sheet = package, part, sheet
        self._loaded: SpilledRows | None = None

    @property
    def _rows(self) -> SpilledRows:
        if self._loaded is None:
            self._loaded = _read(self._package, self._part, self._sheet)
        return self._loaded

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [row[0] for row in self._rows[index]]
        return self._rows[index][0]

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self._rows)


def shared_strings(package: Package, part: str | None, sheet: str) -> SharedStrings:
    """The shared strings of `package` (its part `part`; none without one), streamed when
    first used."""
    return SharedStrings(package, part, sheet)


def _read(package: Package, part: str | None, sheet: str) -> SpilledRows:
    rows = SpilledRows()
    if part is None:
        return rows
    try:
        with package.open(part) as source:
            for _, element in ElementTree.iterparse(source, events=("end",)):
                if local(element.tag) == "si":
                    rows.append([unescape_xstring(string_text(element))])
                    element.clear()
    except ElementTree.ParseError as exc:
        raise BadSheet(sheet, f"{part} is not well-formed XML ({exc})", _HINT) from exc
    return rows


def string_text(element: ElementTree.Element) -> str:
    """The text of an `<si>` or `<is>`: its `<t>`, or the `<t>` of each `<r>` run."""
    namespace = element.tag[: element.tag.index("}") + 1] if element.tag[:1] == "{" else ""
    text, run = namespace + "t", namespace + "r"
    children = list(element)
    if len(children) == 1 and children[0].tag == text:  # the plain string: no runs
        return children[0].text or ""
    parts: list[str] = []
    for child in children:
        if child.tag == text:
            parts.append(child.text or "")
        elif child.tag == run:
            parts.extend(part.text or "" for part in child if part.tag == text)
    return "".join(parts)
