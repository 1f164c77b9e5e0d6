"""Developer metadata: the resource, DeveloperMetadataLookup matching, create/update/delete.

Metadata sits on the spreadsheet, a sheet, or a single row or column, and moves with that
row or column (see `_layout.py`). PROJECT-visible metadata is seen only by callers of the
project that created it; the stand-in takes a service account's project from its email
(`name@PROJECT.iam.gserviceaccount.com`) and puts every other account in one project.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gsheets_standin import _journal
from gsheets_standin._layout import Anchor, LocationKind
from gsheets_standin._model import Spreadsheet, Worksheet

LOCATION_TYPES = ("ROW", "COLUMN", "SHEET", "SPREADSHEET")
VISIBILITIES = ("DOCUMENT", "PROJECT")
STRATEGIES = ("EXACT_LOCATION", "INTERSECTING_LOCATION")
_SERVICE_ACCOUNT_DOMAIN = ".iam.gserviceaccount.com"


class MetadataError(ValueError):
    """A metadata request Sheets refuses (answered 400)."""


def project_of(email: str) -> str:
    """The developer project a caller's requests come from."""
    _local, _, domain = email.partition("@")
    if domain.endswith(_SERVICE_ACCOUNT_DOMAIN):
        return domain[: -len(_SERVICE_ACCOUNT_DOMAIN)]
    return "oauth-clients"


@dataclass(frozen=True)
class Location:
    """A metadata location: the spreadsheet, a sheet, or one row or column of a sheet."""

    kind: LocationKind
    sheet_id: int | None = None
    index: int = 0

    @classmethod
    def parse(cls, book: Spreadsheet, data: Any) -> Location:
        """A DeveloperMetadataLocation of a request (its `locationType` is ignored)."""
        if not isinstance(data, dict):
            raise MetadataError("A developer metadata location is required.")
        if data.get("spreadsheet"):
            return cls("SPREADSHEET")
        if data.get("dimensionRange") is not None:
            rng = data["dimensionRange"] or {}
            sheet_id = int(rng.get("sheetId") or 0)
            ws = _sheet(book, sheet_id)
            start, end = rng.get("startIndex"), rng.get("endIndex")
            if not isinstance(start, int) or not isinstance(end, int) or end != start + 1:
                raise MetadataError(
                    "The specified DimensionRange must represent a single row or column; it "
                    "cannot be unbounded or span multiple rows or columns."
                )
            dimension = rng.get("dimension")
            if dimension not in ("ROWS", "COLUMNS"):
                raise MetadataError(f"Invalid dimension: {dimension!r}")
            size = ws.row_count if dimension == "ROWS" else ws.column_count
            if not 0 <= start < size:
                raise MetadataError(f"Index {start} is outside the sheet's {size} {dimension}.")
            return cls("ROW" if dimension == "ROWS" else "COLUMN", sheet_id, start)
        if data.get("sheetId") is not None:
            sheet_id = int(data["sheetId"])
            _sheet(book, sheet_id)
            return cls("SHEET", sheet_id)
        raise MetadataError("A developer metadata location is required.")

    @classmethod
    def of(cls, ws: Worksheet | None, anchor: Anchor) -> Location:
        """Where `anchor` is now."""
        if ws is None:
            return cls("SPREADSHEET")
        return cls(anchor.kind, ws.sheet_id, anchor.index)

    def resource(self) -> dict[str, Any]:
        """The DeveloperMetadataLocation of a response (zero-valued fields left out, as in
        Google's JSON: a location on sheet 0 has no `sheetId`)."""
        if self.kind == "SPREADSHEET":
            return {"locationType": "SPREADSHEET", "spreadsheet": True}
        if self.kind == "SHEET":
            return {
                "locationType": "SHEET",
                **({"sheetId": self.sheet_id} if self.sheet_id else {}),
            }
        span = {
            "sheetId": self.sheet_id,
            "dimension": "ROWS" if self.kind == "ROW" else "COLUMNS",
            "startIndex": self.index,
            "endIndex": self.index + 1,
        }
        return {"locationType": self.kind, "dimensionRange": {k: v for k, v in span.items() if v}}

    def intersects(self, other: Location) -> bool:
        """Whether two locations share any cell (a row meets every column of its sheet)."""
        if self.kind == "SPREADSHEET" or other.kind == "SPREADSHEET":
            return True
        if self.sheet_id != other.sheet_id:
            return False
        if "SHEET" in (self.kind, other.kind) or self.kind != other.kind:
            return True
        return self.index == other.index


def _sheet(book: Spreadsheet, sheet_id: int) -> Worksheet:
    ws = book.by_id(sheet_id)
    if ws is None:
        raise MetadataError(f"No grid with id: {sheet_id}")
    return ws


def resource(ws: Worksheet | None, anchor: Anchor) -> dict[str, Any]:
    """The DeveloperMetadata resource of `anchor`."""
    body: dict[str, Any] = {
        "metadataId": anchor.metadata_id,
        "metadataKey": anchor.key,
        "location": Location.of(ws, anchor).resource(),
        "visibility": anchor.visibility,
    }
    if anchor.value is not None:
        body["metadataValue"] = anchor.value
    return body


def visible(anchor: Anchor, caller: str) -> bool:
    """Whether `caller` may see `anchor` (DOCUMENT metadata, or PROJECT metadata of its project)."""
    return anchor.visibility == "DOCUMENT" or anchor.project == project_of(caller)


def check_lookup(lookup: Any) -> dict[str, Any]:
    """A DeveloperMetadataLookup, validated; raises MetadataError."""
    if not isinstance(lookup, dict):
        raise MetadataError("Invalid DeveloperMetadataLookup")
    strategy = lookup.get("locationMatchingStrategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise MetadataError(f"Invalid locationMatchingStrategy: {strategy!r}")
    if strategy is not None and lookup.get("metadataLocation") is None:
        raise MetadataError(
            "A metadataLocation must be specified when a locationMatchingStrategy is."
        )
    kind = lookup.get("locationType")
    if kind is not None and kind not in LOCATION_TYPES:
        raise MetadataError(f"Invalid locationType: {kind!r}")
    visibility = lookup.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise MetadataError(f"Invalid visibility: {visibility!r}")
    return lookup


def lookup(
    book: Spreadsheet, query: Mapping[str, Any], caller: str
) -> list[tuple[Worksheet | None, Anchor]]:
    """The metadata a DeveloperMetadataLookup selects: every given field must match."""
    check_lookup(query)
    where: Location | None = None
    if query.get("metadataLocation") is not None:
        where = Location.parse(book, query["metadataLocation"])
    exact = query.get("locationMatchingStrategy") == "EXACT_LOCATION"
    # The cheap tests first, the query read once: a sheet of 100,000 tagged rows is
    # scanned once per DataFilter of every request.
    wanted_id = int(query["metadataId"]) if query.get("metadataId") is not None else None
    key, value = query.get("metadataKey"), query.get("metadataValue")
    project = project_of(caller)
    found = []
    for ws, anchor in book.anchors():
        if wanted_id is not None and anchor.metadata_id != wanted_id:
            continue
        if key is not None and anchor.key != key:
            continue
        if value is not None and anchor.value != value:
            continue
        if anchor.visibility != "DOCUMENT" and anchor.project != project:
            continue
        if query.get("visibility") is not None and anchor.visibility != query["visibility"]:
            continue
        if query.get("locationType") is not None and anchor.kind != query["locationType"]:
            continue
        if where is not None:
            here = Location.of(ws, anchor)
            if (exact and here != where) or (not exact and not here.intersects(where)):
                continue
        found.append((ws, anchor))
    return found


def create(book: Spreadsheet, data: Any, caller: str) -> dict[str, Any]:
    """createDeveloperMetadata: store a DeveloperMetadata; its resource."""
    if not isinstance(data, dict):
        raise MetadataError("developerMetadata is required.")
    key = data.get("metadataKey")
    if not isinstance(key, str) or not key:
        raise MetadataError("Developer metadata must always have a key specified.")
    visibility = data.get("visibility")
    if visibility not in VISIBILITIES:
        raise MetadataError("Developer metadata must always have visibility specified.")
    value = data.get("metadataValue")
    if value is not None and not isinstance(value, str):
        raise MetadataError("metadataValue must be a string.")
    where = Location.parse(book, data.get("location"))
    metadata_id = data.get("metadataId")
    if metadata_id is None:
        metadata_id = book.new_metadata_id()
    elif not isinstance(metadata_id, int) or metadata_id <= 0:
        raise MetadataError("metadataId must be positive.")
    elif any(a.metadata_id == metadata_id for _, a in book.anchors()):
        raise MetadataError(f"Developer metadata with ID {metadata_id} already exists.")
    anchor = Anchor(
        metadata_id, key, value, str(visibility), project_of(caller), where.kind, where.index
    )
    journal = _journal.current()
    if where.kind == "SPREADSHEET":
        if journal is not None:
            journal.save_list(book, "metadata")
        book.metadata.append(anchor)
        return resource(None, anchor)
    assert where.sheet_id is not None
    ws = _sheet(book, where.sheet_id)
    if journal is not None:
        journal.save_list(ws.layout, "metadata")
    ws.layout.metadata.append(anchor)
    return resource(ws, anchor)


def remove(book: Spreadsheet, found: Iterable[tuple[Worksheet | None, Anchor]]) -> None:
    """Delete the given metadata."""
    doomed = {id(anchor) for _, anchor in found}
    if not doomed:
        return
    journal = _journal.current()
    if journal is not None:
        journal.save_list(book, "metadata")
        for ws in book.sheets:
            journal.save_list(ws.layout, "metadata")
    book.metadata = [a for a in book.metadata if id(a) not in doomed]
    for ws in book.sheets:
        ws.layout.metadata = [a for a in ws.layout.metadata if id(a) not in doomed]


def update(
    book: Spreadsheet, found: list[tuple[Worksheet | None, Anchor]], data: Any, fields: set[str]
) -> list[dict[str, Any]]:
    """updateDeveloperMetadata: change the named fields of every selected entry."""
    if not isinstance(data, dict):
        raise MetadataError("developerMetadata is required.")
    every = "*" in fields
    if every or "metadataId" in fields:
        raise MetadataError("metadataId cannot be updated.")
    results = []
    for ws, anchor in found:
        if "metadataKey" in fields:
            key = data.get("metadataKey")
            if not isinstance(key, str) or not key:
                raise MetadataError("Developer metadata must always have a key specified.")
            anchor.key = key
        if "metadataValue" in fields:
            value = data.get("metadataValue")
            anchor.value = value if isinstance(value, str) else None
        if "visibility" in fields:
            if data.get("visibility") not in VISIBILITIES:
                raise MetadataError("Developer metadata must always have visibility specified.")
            anchor.visibility = str(data["visibility"])
        if "location" in fields:
            where = Location.parse(book, data.get("location"))
            remove(book, [(ws, anchor)])
            anchor.kind, anchor.index = where.kind, where.index
            if where.kind == "SPREADSHEET":
                ws = None
                book.metadata.append(anchor)
            else:
                assert where.sheet_id is not None
                ws = _sheet(book, where.sheet_id)
                ws.layout.metadata.append(anchor)
        results.append(resource(ws, anchor))
    return results
