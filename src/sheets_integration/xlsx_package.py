"""`Package`: an .xlsx file as the zip of parts it is, edited part by part.

An .xlsx workbook is an Open Packaging Conventions zip: XML parts found through
relationship parts (`_rels/.rels` -> the workbook -> its worksheets, styles, shared
strings, calculation chain). `Package` finds the parts a sheet backend needs and writes
the zip back with only the parts it was given replaced or removed; every other part is
copied with its name, order, timestamp and content unchanged.
"""

from __future__ import annotations

import functools
import io
import posixpath
import re
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, BinaryIO
from urllib.parse import unquote
from xml.etree import ElementTree

from sheets_integration.errors import BadSheet
from sheets_integration.xlsx_markup import PREFIX, attr, set_attr

_REL_OFFICE_DOCUMENT = "/officeDocument"
_REL_WORKSHEET = "/worksheet"
_REL_STYLES = "/styles"
_REL_SHARED_STRINGS = "/sharedStrings"
_REL_CALC_CHAIN = "/calcChain"
_REL_HYPERLINK = "/hyperlink"
_HINT = "open it in Excel or LibreOffice and save it again as .xlsx"
#: Bytes copied at once when a part is streamed from one zip into the other.
_BLOCK = 1 << 20
# Defusing: a part that declares entities (the "billion laughs") is refused, not expanded.
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)


@dataclass(frozen=True)
class Relationship:
    """One relationship of a part: its id, type (the URI's last segment kept whole) and target.

    `target` is a part name inside the package ("xl/worksheets/sheet1.xml"), or the URL
    itself when `external` (a hyperlink's address).
    """

    id: str
    type: str
    target: str
    external: bool


@dataclass(frozen=True)
class SheetEntry:
    """A sheet as the workbook lists it: title, sheetId, and its part (None: not a worksheet)."""

    title: str
    sheet_id: str
    part: str | None


def local(tag: str) -> str:
    """An element or attribute name without its namespace ("{ns}row" -> "row")."""
    return tag.rpartition("}")[2]


def parse_xml(data: bytes, what: str, sheet: str) -> ElementTree.Element:
    """A small part parsed whole (workbook, relationships, styles); `BadSheet` when broken."""
    if _DOCTYPE.search(data, 0, 4096):
        raise BadSheet(sheet, f"{what} declares a DOCTYPE, which .xlsx parts never do", _HINT)
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise BadSheet(sheet, f"{what} is not well-formed XML ({exc})", _HINT) from exc


class Package:
    """The parts of an .xlsx zip, read lazily; `dump` writes it back with some parts replaced.

    `data` is the file's bytes, or the file itself (a seekable stream): then a part is
    read from it only when asked for, and `open`/`write_to` stream a big part (a worksheet
    of 500,000 rows) instead of holding it.
    """

    def __init__(self, data: bytes | BinaryIO, sheet: str) -> None:
        self.sheet = sheet
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise BadSheet(sheet, f"not a readable .xlsx workbook ({exc})", _HINT) from exc
        # Part names are case-insensitive in a package; zip member names are not.
        self._names = {info.filename.lower(): info.filename for info in self._zip.infolist()}
        self.workbook = self._workbook_part()

    def has(self, part: str) -> bool:
        """True when the package holds `part`."""
        return part.lower() in self._names

    def read(self, part: str) -> bytes:
        """The content of `part`; `BadSheet` when it is missing or its zip entry is damaged."""
        name = self._names.get(part.lower())
        if name is None:
            raise BadSheet(self.sheet, f"the workbook lacks its part {part}", _HINT)
        return self._member(name)

    def open(self, part: str) -> IO[bytes]:
        """`part` as a stream of its (inflated) content, for parts too big to read whole."""
        name = self._names.get(part.lower())
        if name is None:
            raise BadSheet(self.sheet, f"the workbook lacks its part {part}", _HINT)
        try:
            return self._zip.open(name)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise BadSheet(self.sheet, f"its part {name} cannot be read ({exc})", _HINT) from exc

    def _member(self, name: str | zipfile.ZipInfo) -> bytes:
        try:
            return self._zip.read(name)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            label = name if isinstance(name, str) else name.filename
            raise BadSheet(self.sheet, f"its part {label} cannot be read ({exc})", _HINT) from exc

    def relationships(self, part: str) -> list[Relationship]:
        """The relationships of `part` (from its `_rels/*.rels` part); [] when it has none."""
        folder, name = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", name + ".rels")
        if not self.has(rels):
            return []
        found: list[Relationship] = []
        for element in parse_xml(self.read(rels), rels, self.sheet):
            if local(element.tag) != "Relationship":
                continue
            target = element.get("Target", "")
            external = element.get("TargetMode", "") == "External"
            if not external:
                target = _resolve(folder, target)
            kind = element.get("Type", "")
            found.append(Relationship(element.get("Id", ""), kind, target, external))
        return found

    def related(self, part: str, kind: str) -> str | None:
        """The first internal part `part` relates to by a type ending in `kind`, or None."""
        for rel in self.relationships(part):
            if rel.type.endswith(kind) and not rel.external and self.has(rel.target):
                return rel.target
        return None

    def sheets(self) -> list[SheetEntry]:
        """Every sheet the workbook lists, in tab order."""
        root = self._workbook_root
        rels = {rel.id: rel for rel in self.relationships(self.workbook)}
        entries: list[SheetEntry] = []
        listed = [child for sheets in root if local(sheets.tag) == "sheets" for child in sheets]
        for element in listed:
            if local(element.tag) != "sheet":
                continue
            rel_id = next((v for k, v in element.attrib.items() if local(k) == "id"), "")
            rel = rels.get(rel_id)
            is_worksheet = rel is not None and rel.type.endswith(_REL_WORKSHEET)
            part = rel.target if rel is not None and is_worksheet else None
            if part is not None and not self.has(part):
                raise BadSheet(self.sheet, f"the workbook lacks its worksheet part {part}", _HINT)
            entries.append(SheetEntry(element.get("name", ""), element.get("sheetId", ""), part))
        return entries

    def date1904(self) -> bool:
        """True when the workbook counts dates from 1904 (old Mac Excel)."""
        for element in self._workbook_root:
            if local(element.tag) == "workbookPr":
                return element.get("date1904", "false").lower() in ("1", "true")
        return False

    def styles_part(self) -> str | None:
        """The workbook's styles part, if it has one."""
        return self.related(self.workbook, _REL_STYLES)

    def shared_strings_part(self) -> str | None:
        """The workbook's shared strings part, if it has one."""
        return self.related(self.workbook, _REL_SHARED_STRINGS)

    def calc_chain_part(self) -> str | None:
        """The workbook's calculation chain part, if it has one."""
        return self.related(self.workbook, _REL_CALC_CHAIN)

    def hyperlink_targets(self, worksheet: str) -> dict[str, str]:
        """Relationship id -> URL of the external hyperlinks of `worksheet`."""
        return {
            rel.id: rel.target
            for rel in self.relationships(worksheet)
            if rel.external and rel.type.endswith(_REL_HYPERLINK)
        }

    def dump(self, replaced: Mapping[str, bytes], removed: frozenset[str] = frozenset()) -> bytes:
        """The zip with the parts in `replaced` given new content and those in `removed` gone.

        Every other member keeps its name, position, timestamp, compression and content.
        """
        buffer = io.BytesIO()
        self.write_to(buffer, replaced, removed)
        return buffer.getvalue()

    def write_to(
        self,
        target: BinaryIO,
        replaced: Mapping[str, bytes | IO[bytes]],
        removed: frozenset[str] = frozenset(),
    ) -> None:
        """`dump`, written into `target`; a replaced part given as a stream (read from its
        start) and every part kept are copied through in blocks, never held whole."""
        replace = {part.lower(): data for part, data in replaced.items()}
        drop = {part.lower() for part in removed}
        with zipfile.ZipFile(target, "w") as out:
            out.comment = self._zip.comment
            for info in self._zip.infolist():
                key = info.filename.lower()
                if key in drop:
                    continue
                copy = zipfile.ZipInfo(info.filename, info.date_time)
                copy.compress_type = info.compress_type
                copy.external_attr = info.external_attr
                copy.create_system = info.create_system
                copy.comment = info.comment
                data = replace.get(key)
                if isinstance(data, bytes):
                    out.writestr(copy, data)
                    continue
                # The size told beforehand: zipfile then adds ZIP64 fields only when needed.
                if data is not None:
                    copy.file_size = data.seek(0, io.SEEK_END)
                    data.seek(0)
                else:
                    copy.file_size = info.file_size
                try:
                    with out.open(copy, "w") as member:
                        if data is not None:
                            shutil.copyfileobj(data, member, _BLOCK)
                        else:
                            with self._zip.open(info) as source:
                                shutil.copyfileobj(source, member, _BLOCK)
                except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
                    raise BadSheet(
                        self.sheet, f"its part {info.filename} cannot be read ({exc})", _HINT
                    ) from exc

    @functools.cached_property
    def _workbook_root(self) -> ElementTree.Element:
        return parse_xml(self.read(self.workbook), self.workbook, self.sheet)

    def _workbook_part(self) -> str:
        for rel in self.relationships(""):
            if (
                rel.type.endswith(_REL_OFFICE_DOCUMENT)
                and not rel.external
                and self.has(rel.target)
            ):
                return rel.target
        raise BadSheet(self.sheet, "not an .xlsx workbook (the zip has no workbook part)", _HINT)


def _resolve(folder: str, target: str) -> str:
    """A relationship target as a part name, relative to the folder of its source part."""
    target = unquote(target.split("#", 1)[0])
    path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
    return posixpath.normpath(path).lstrip("/")


# --- keeping the package consistent when a part must go ----------------------------------------

_ELEMENT = re.compile(rb"<" + PREFIX + rb"(?:Override|Relationship)\b[^>]*?/>")
_CALC_CELL = re.compile(rb"<(" + PREFIX + rb")c\b([^>]*?)/>")


def forget_calculated(chain: bytes, sheet_id: str, cells: set[str]) -> bytes | None:
    """The calculation chain without the entries of `cells` of sheet `sheet_id` (their
    formulas were overwritten); None when no entry is left (the part must then go).

    An entry without `i` belongs to the sheet of the entry before it, so an entry that
    would inherit another sheet once its predecessor is gone is given its `i` explicitly.
    """
    pieces: list[bytes] = []
    position, kept = 0, 0
    current: str | None = None
    last_kept: str | None = None
    for entry in _CALC_CELL.finditer(chain):
        attrs = entry.group(2)
        explicit = attr(attrs, b"i")
        current = explicit if explicit is not None else current
        if current == sheet_id and attr(attrs, b"r") in cells:
            pieces.append(chain[position : entry.start()])
            position = entry.end()
            continue
        if explicit is None and current is not None and last_kept != current:
            pieces.append(chain[position : entry.start()])
            own = b'c i="' + current.encode() + b'"'
            pieces.append(b"<" + entry.group(1) + own + attrs + b"/>")
            position = entry.end()
        last_kept = current
        kept += 1
    if kept == 0:
        return None
    pieces.append(chain[position:])
    return b"".join(pieces)


def without_part(package: Package, part: str, source: str) -> dict[str, bytes]:
    """The content types and the relationships of `source` with every mention of `part` gone."""
    edits: dict[str, bytes] = {}
    name = ("/" + part).lower()
    types = package.read("[Content_Types].xml")
    edits["[Content_Types].xml"] = _ELEMENT.sub(
        lambda m: b"" if (attr(m.group(0), b"PartName") or "").lower() == name else m.group(0),
        types,
    )
    folder, base = posixpath.split(source)
    rels = posixpath.join(folder, "_rels", base + ".rels")
    if package.has(rels):
        targets = {rel.id for rel in package.relationships(source) if rel.target == part}
        edits[rels] = _ELEMENT.sub(
            lambda m: b"" if attr(m.group(0), b"Id") in targets else m.group(0),
            package.read(rels),
        )
    return edits


_CALC_PR = re.compile(rb"<(" + PREFIX + rb")calcPr\b([^>]*?)(/?)>")
# Elements after which <calcPr> stands in a workbook (CT_Workbook's order), last first.
_BEFORE_CALC_PR = re.compile(
    rb"</"
    + PREFIX
    + rb"(?:definedNames|externalReferences|functionGroups|sheets)\s*>|<"
    + PREFIX
    + rb"(?:definedNames|externalReferences|functionGroups)\b[^>]*/>"
)
_ROOT_PREFIX = re.compile(rb"<(" + PREFIX + rb")workbook\b")


def recalculated_on_load(workbook: bytes) -> bytes:
    """The workbook part asking Excel to recalculate every formula when it opens the file.

    Formulas that depend on a cell we wrote keep their old cached result in the file (it is
    kept, not guessed); `fullCalcOnLoad` makes Excel recompute them all on open, as it does
    for files saved by programs that cache nothing.
    """
    found = _CALC_PR.search(workbook)
    if found is not None:
        attrs = found.group(2)
        if attr(attrs, b"fullCalcOnLoad") in ("1", "true"):
            return workbook
        new = b"<" + found.group(1) + b"calcPr" + set_attr(attrs, b"fullCalcOnLoad", b"1")
        return workbook[: found.start()] + new + found.group(3) + b">" + workbook[found.end() :]
    anchors = list(_BEFORE_CALC_PR.finditer(workbook))
    root = _ROOT_PREFIX.search(workbook)
    if not anchors or root is None:
        return workbook
    at = max(anchor.end() for anchor in anchors)
    element = b"<" + root.group(1) + b'calcPr fullCalcOnLoad="1"/>'
    return workbook[:at] + element + workbook[at:]
