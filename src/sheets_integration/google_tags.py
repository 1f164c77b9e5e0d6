"""Developer-metadata tags: how sheetbatch marks the columns and rows that are its own.

A column we write (Status, Job ID, Updated, Error, each output column) carries the tag
`sheetbatch.column` = its name; each job's row carries `sheetbatch.job` = its job id. Tags
are PROJECT-visible (other tools do not see them) and Google moves them with their column
or row when others are inserted, deleted or moved, and deletes them with it. Values are
written *through* the column tags (a DataFilter on the tag's metadataId), so they can only
land in a column carrying our tag. A sort moves cell values but not rows, so a row tag is
a hint, trusted only where the row's visible `Job ID` cell agrees with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sheets_integration.google_api import DataFilter

COLUMN_KEY = "sheetbatch.column"
JOB_KEY = "sheetbatch.job"
VISIBILITY = "PROJECT"


@dataclass(frozen=True)
class Tag:
    """A tag as read: its metadataId, value, and the row or column index it is on now."""

    metadata_id: int
    value: str
    index: int


def parse(meta: Mapping[str, Any], key: str, sheet_id: int) -> Tag | None:
    """The Tag of a DeveloperMetadata resource if it is a `key` tag on worksheet `sheet_id`.

    Zero-valued fields (sheetId 0, startIndex 0) are absent from Google's JSON.
    """
    if meta.get("metadataKey") != key:
        return None
    span = (meta.get("location") or {}).get("dimensionRange")
    if not isinstance(span, dict) or int(span.get("sheetId", 0)) != sheet_id:
        return None
    return Tag(
        int(meta.get("metadataId", 0)),
        str(meta.get("metadataValue", "")),
        int(span.get("startIndex", 0)),
    )


def column_tags(sheet: Mapping[str, Any], sheet_id: int) -> list[Tag]:
    """The column tags in a Sheet resource read with `columnMetadata.developerMetadata`."""
    found: dict[int, Tag] = {}  # each range's grid data repeats the columns' metadata
    for data in sheet.get("data", []):
        for properties in data.get("columnMetadata", []):
            for meta in properties.get("developerMetadata", []):
                tag = parse(meta, COLUMN_KEY, sheet_id)
                if tag is not None:
                    found.setdefault(tag.metadata_id, tag)
    return list(found.values())


def create(key: str, value: str, sheet_id: int, dimension: str, index: int) -> dict[str, Any]:
    """A createDeveloperMetadata request tagging one row or column (`dimension` ROWS/COLUMNS)."""
    return {
        "createDeveloperMetadata": {
            "developerMetadata": {
                "metadataKey": key,
                "metadataValue": value,
                "visibility": VISIBILITY,
                "location": {
                    "dimensionRange": {
                        "sheetId": sheet_id,
                        "dimension": dimension,
                        "startIndex": index,
                        "endIndex": index + 1,
                    }
                },
            }
        }
    }


def created_id(reply: Mapping[str, Any]) -> int:
    """The metadataId in the reply to a createDeveloperMetadata request."""
    return int(reply["createDeveloperMetadata"]["developerMetadata"]["metadataId"])


def delete(metadata_id: int) -> dict[str, Any]:
    """A deleteDeveloperMetadata request removing one tag (harmless to any cell)."""
    return {"deleteDeveloperMetadata": {"dataFilter": by_id(metadata_id)}}


def by_id(metadata_id: int) -> DataFilter:
    """A DataFilter selecting the row or column a tag is on, wherever it is now."""
    return {"developerMetadataLookup": {"metadataId": metadata_id}}


def on_sheet(key: str, sheet_id: int, values: Iterable[str] = ()) -> list[DataFilter]:
    """Lookups of `key` tags (with one of `values`, or any) on worksheet `sheet_id` only.

    A copy of the tab may carry copies of our tags; the location keeps them out.
    """
    base: dict[str, Any] = {
        "metadataKey": key,
        "metadataLocation": {"sheetId": sheet_id},
        "locationMatchingStrategy": "INTERSECTING_LOCATION",
    }
    wanted = list(values)
    if not wanted:
        return [{"developerMetadataLookup": base}]
    return [{"developerMetadataLookup": {**base, "metadataValue": value}} for value in wanted]
