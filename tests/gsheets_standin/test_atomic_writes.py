"""A failed write changes nothing, now that cell and metadata writes run without a copy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gsheets_standin import ServiceAccountKey, StandIn
from gsheets_standin._a1 import Box

ROWS = [["Company", "Status", "Job ID"], ["Acme", "done", "j1"], ["Beta", "", "j2"]]


@pytest.fixture
def book(standin: StandIn, service_account_key: ServiceAccountKey) -> str:
    return standin.create_spreadsheet(
        {"Leads": ROWS}, shared_with=[service_account_key.email], rows=10
    )


def _root(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/")


def _tag(index: int, value: str, dimension: str = "ROWS") -> dict[str, Any]:
    return {
        "createDeveloperMetadata": {
            "developerMetadata": {
                "metadataKey": "sheetbatch.job",
                "metadataValue": value,
                "visibility": "PROJECT",
                "location": {
                    "dimensionRange": {
                        "sheetId": 0,
                        "dimension": dimension,
                        "startIndex": index,
                        "endIndex": index + 1,
                    }
                },
            }
        }
    }


def _cell(row: int, col: int, text: str) -> dict[str, Any]:
    return {
        "updateCells": {
            "start": {"sheetId": 0, "rowIndex": row, "columnIndex": col},
            "rows": [{"values": [{"userEnteredValue": {"stringValue": text}}]}],
            "fields": "userEnteredValue",
        }
    }


def _tags(api: httpx.Client) -> list[tuple[str, int]]:
    response = api.post(
        "/developerMetadata:search",
        json={"dataFilters": [{"developerMetadataLookup": {"metadataKey": "sheetbatch.job"}}]},
    )
    assert response.status_code == 200, response.text
    return sorted(
        (
            m["developerMetadata"]["metadataValue"],
            m["developerMetadata"]["location"]["dimensionRange"].get("startIndex", 0),
        )
        for m in response.json().get("matchedDeveloperMetadata", [])
    )


def _metadata_id(api: httpx.Client, value: str) -> int:
    response = api.post(
        "/developerMetadata:search",
        json={"dataFilters": [{"developerMetadataLookup": {"metadataValue": value}}]},
    )
    (found,) = response.json()["matchedDeveloperMetadata"]
    return int(found["developerMetadata"]["metadataId"])


def test_failed_batch_update_of_cells_and_metadata_changes_nothing(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    ok = api.post(_root(api) + ":batchUpdate", json={"requests": [_tag(1, "j1"), _tag(2, "j2")]})
    assert ok.status_code == 200, ok.text
    before = standin.values(book, "Leads")
    response = api.post(
        _root(api) + ":batchUpdate",
        json={
            "requests": [
                _tag(3, "j3"),
                _cell(1, 1, "changed"),
                _cell(7, 4, "below the table"),  # grows the stored rows
                {
                    "deleteDeveloperMetadata": {
                        "dataFilter": {
                            "developerMetadataLookup": {"metadataId": _metadata_id(api, "j1")}
                        }
                    }
                },
                _cell(50, 0, "outside the grid"),  # fails: everything above is undone
            ]
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid requests[4].updateCells")
    assert standin.values(book, "Leads") == before
    assert _tags(api) == [("j1", 1), ("j2", 2)]
    with standin.edit(book) as sheet:
        assert len(sheet.sheet("Leads").rows) == len(ROWS)  # no row added and left behind
    # The spreadsheet works on as before: the same requests, valid, all land.
    again = api.post(
        _root(api) + ":batchUpdate", json={"requests": [_tag(3, "j3"), _cell(7, 4, "x")]}
    )
    assert again.status_code == 200, again.text
    assert _tags(api) == [("j1", 1), ("j2", 2), ("j3", 3)]
    assert standin.values(book, "Leads")[7][4] == "x"


def test_failed_values_write_through_a_protected_cell_changes_nothing(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    with standin.edit(book) as sheet:
        ws = sheet.sheet("Leads")
        sheet.protect(ws, Box(2, 0, 3, 3), description="Beta is the owner's")
    before = standin.values(book, "Leads")
    response = api.post(
        "/values:batchUpdate",
        json={
            "valueInputOption": "RAW",
            "data": [
                {"range": "Leads!B2:B2", "values": [["written"]]},
                {"range": "Leads!E5:E6", "values": [["new"], ["rows"]]},
                {"range": "Leads!B3", "values": [["refused"]]},
            ],
        },
    )
    assert response.status_code == 400
    assert standin.values(book, "Leads") == before
    with standin.edit(book) as sheet:
        assert len(sheet.sheet("Leads").rows) == len(ROWS)
