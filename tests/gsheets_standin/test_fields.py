"""`fields` on write methods: the answer keeps what it selects, however much was written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gsheets_standin import ServiceAccountKey, StandIn


@pytest.fixture
def book(standin: StandIn, service_account_key: ServiceAccountKey) -> str:
    rows = [["Company", "Job ID"], *([f"Company {i}", f"j{i}"] for i in range(300))]
    return standin.create_spreadsheet({"Leads": rows}, shared_with=[service_account_key.email])


def _tag(row: int) -> dict[str, Any]:
    return {
        "createDeveloperMetadata": {
            "developerMetadata": {
                "metadataKey": "sheetbatch.job",
                "metadataValue": f"j{row}",
                "visibility": "PROJECT",
                "location": {
                    "dimensionRange": {
                        "sheetId": 0,
                        "dimension": "ROWS",
                        "startIndex": row,
                        "endIndex": row + 1,
                    }
                },
            }
        }
    }


def test_batch_update_answer_with_fields_does_not_grow_with_the_requests(
    api: httpx.Client, book: str
) -> None:
    root = str(api.base_url).rstrip("/")
    small = api.post(
        root + ":batchUpdate", params={"fields": "spreadsheetId"}, json={"requests": [_tag(1)]}
    )
    large = api.post(
        root + ":batchUpdate",
        params={"fields": "spreadsheetId"},
        json={"requests": [_tag(row) for row in range(2, 300)]},
    )
    assert small.status_code == large.status_code == 200, large.text
    assert small.json() == large.json() == {"spreadsheetId": book}
    # Without a mask every reply comes back, and the tags were all made either way.
    found = api.post(
        "/developerMetadata:search",
        json={"dataFilters": [{"developerMetadataLookup": {"metadataKey": "sheetbatch.job"}}]},
    )
    assert len(found.json()["matchedDeveloperMetadata"]) == 299


def test_values_write_answer_keeps_the_selected_fields(api: httpx.Client) -> None:
    response = api.post(
        "/values:batchUpdate",
        params={"fields": "totalUpdatedCells,responses(updatedRange)"},
        json={
            "valueInputOption": "RAW",
            "includeValuesInResponse": True,
            "data": [{"range": "Leads!C2:C3", "values": [["a"], ["b"]]}],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "totalUpdatedCells": 2,
        "responses": [{"updatedRange": "Leads!C2:C3"}],
    }


def test_unparsable_fields_are_refused_and_change_nothing(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    before = standin.values(book, "Leads")
    response = api.post(
        "/values:batchUpdate",
        params={"fields": "responses(("},
        json={"valueInputOption": "RAW", "data": [{"range": "Leads!C2", "values": [["x"]]}]},
    )
    assert response.status_code == 400
    assert standin.values(book, "Leads") == before
