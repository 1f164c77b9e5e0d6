"""Developer metadata and DataFilters over raw HTTP, against the documented Sheets v4 shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gsheets_standin import ServiceAccountKey, StandIn

ROWS = [["Company", "Status", "Job ID"], ["Acme", "done", "j1"], ["Beta", "", "j2"]]


@pytest.fixture
def book(standin: StandIn, service_account_key: ServiceAccountKey) -> str:
    return standin.create_spreadsheet({"Leads": ROWS}, shared_with=[service_account_key.email])


def _client(standin: StandIn, email: str, book: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{standin.url}/v4/spreadsheets/{book}",
        headers={"Authorization": f"Bearer {standin.issue_token(email)}"},
        timeout=5,
    )


@pytest.fixture
def api(
    standin: StandIn, service_account_key: ServiceAccountKey, book: str
) -> Iterator[httpx.Client]:
    with _client(standin, service_account_key.email, book) as client:
        yield client


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _batch(api: httpx.Client, *requests: dict[str, Any]) -> dict[str, Any]:
    return _ok(
        api.post(str(api.base_url).rstrip("/") + ":batchUpdate", json={"requests": requests})
    )


def _tag(api: httpx.Client, dimension: str, index: int, key: str, value: str) -> int:
    reply = _batch(
        api,
        {
            "createDeveloperMetadata": {
                "developerMetadata": {
                    "metadataKey": key,
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
        },
    )
    created = reply["replies"][0]["createDeveloperMetadata"]["developerMetadata"]
    return int(created["metadataId"])


def _column_values(api: httpx.Client, metadata_id: int) -> list[Any]:
    body = _ok(
        api.post(
            "/values:batchGetByDataFilter",
            json={
                "dataFilters": [{"developerMetadataLookup": {"metadataId": metadata_id}}],
                "majorDimension": "COLUMNS",
            },
        )
    )
    ranges = body.get("valueRanges", [])
    if not ranges:
        return []
    values: list[Any] = (ranges[0]["valueRange"].get("values") or [[]])[0]
    return values


def _dimension_edit(api: httpx.Client, kind: str, dimension: str, **extra: Any) -> None:
    _batch(api, {kind: {"range": {"sheetId": 0, "dimension": dimension, **extra}}})


def test_column_metadata_follows_its_column_and_dies_with_it(api: httpx.Client) -> None:
    status = _tag(api, "COLUMNS", 1, "sheetbatch.column", "Status")
    assert _column_values(api, status) == ["Status", "done"]
    _dimension_edit(api, "insertDimension", "COLUMNS", startIndex=0, endIndex=2)
    assert _column_values(api, status) == ["Status", "done"]  # now column D
    got = _ok(api.get(f"/developerMetadata/{status}"))
    assert got["location"]["dimensionRange"]["startIndex"] == 3
    _batch(
        api,
        {
            "moveDimension": {
                "source": {"sheetId": 0, "dimension": "COLUMNS", "startIndex": 3, "endIndex": 4},
                "destinationIndex": 0,
            }
        },
    )
    assert _column_values(api, status) == ["Status", "done"]  # now column A
    _dimension_edit(api, "deleteDimension", "COLUMNS", startIndex=0, endIndex=1)
    assert _column_values(api, status) == []
    assert api.get(f"/developerMetadata/{status}").status_code == 404


def test_row_metadata_moves_with_rows_but_not_with_a_sort(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    beta = _tag(api, "ROWS", 2, "sheetbatch.job", "j2")
    _dimension_edit(api, "insertDimension", "ROWS", startIndex=1, endIndex=2)
    assert _ok(api.get(f"/developerMetadata/{beta}"))["location"] == {
        "locationType": "ROW",
        "dimensionRange": {"dimension": "ROWS", "startIndex": 3, "endIndex": 4},  # sheetId 0
    }
    with standin.edit(book) as spreadsheet:
        spreadsheet.sheet().sort_by(0, descending=True)  # values move, rows stay
    found = _ok(
        api.post(
            "/developerMetadata:search",
            json={"dataFilters": [{"developerMetadataLookup": {"metadataKey": "sheetbatch.job"}}]},
        )
    )
    (match,) = found["matchedDeveloperMetadata"]
    assert match["developerMetadata"]["metadataValue"] == "j2"
    assert match["developerMetadata"]["location"]["dimensionRange"]["startIndex"] == 3
    row = _ok(
        api.post(
            "/values:batchGetByDataFilter",
            json={"dataFilters": [{"developerMetadataLookup": {"metadataId": beta}}]},
        )
    )["valueRanges"][0]["valueRange"]
    assert row["range"] == "Leads!A4:Z4"
    assert "values" not in row  # the sort moved Beta's values up to row 2; the tag stayed
    assert standin.values(book)[1] == ["Beta", "", "j2"]


def test_search_by_location_and_zero_fields_left_out(api: httpx.Client) -> None:
    _tag(api, "COLUMNS", 0, "k", "A")
    _tag(api, "COLUMNS", 2, "k", "C")
    found = _ok(
        api.post("/developerMetadata:search", json={"dataFilters": [{"a1Range": "Leads!C1"}]})
    )
    (match,) = found["matchedDeveloperMetadata"]
    assert match["developerMetadata"]["metadataValue"] == "C"
    assert match["dataFilters"] == [{"a1Range": "Leads!C1"}]
    empty = api.post(
        "/developerMetadata:search",
        json={"dataFilters": [{"developerMetadataLookup": {"metadataKey": "nothing"}}]},
    )
    assert _ok(empty) == {}


def test_lookups_limited_to_a_sheet_with_intersecting_location(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    _tag(api, "COLUMNS", 1, "sheetbatch.column", "Status")
    with standin.edit(book) as spreadsheet:
        copy = spreadsheet.duplicate(spreadsheet.sheet("Leads"), "Leads copy")
    lookup = {"metadataKey": "sheetbatch.column", "metadataValue": "Status"}
    everywhere = _ok(
        api.post(
            "/developerMetadata:search", json={"dataFilters": [{"developerMetadataLookup": lookup}]}
        )
    )["matchedDeveloperMetadata"]
    assert {
        m["developerMetadata"]["location"]["dimensionRange"].get("sheetId", 0) for m in everywhere
    } == {
        0,
        copy.sheet_id,
    }
    assert len({m["developerMetadata"]["metadataId"] for m in everywhere}) == 2
    narrowed = {
        **lookup,
        "metadataLocation": {"sheetId": copy.sheet_id},
        "locationMatchingStrategy": "INTERSECTING_LOCATION",
    }
    only = _ok(
        api.post(
            "/developerMetadata:search",
            json={"dataFilters": [{"developerMetadataLookup": narrowed}]},
        )
    )["matchedDeveloperMetadata"]
    assert [m["developerMetadata"]["location"]["dimensionRange"]["sheetId"] for m in only] == [
        copy.sheet_id
    ]


def test_write_by_data_filter_lands_in_the_tagged_column(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    status = _tag(api, "COLUMNS", 1, "sheetbatch.column", "Status")
    _dimension_edit(api, "insertDimension", "COLUMNS", startIndex=1, endIndex=2)
    body = _ok(
        api.post(
            "/values:batchUpdateByDataFilter",
            json={
                "valueInputOption": "RAW",
                "includeValuesInResponse": True,
                "data": [
                    {
                        "dataFilter": {"developerMetadataLookup": {"metadataId": status}},
                        "majorDimension": "COLUMNS",
                        "values": [[None, None, "=1+1"]],
                    },
                    {
                        "dataFilter": {"developerMetadataLookup": {"metadataKey": "gone"}},
                        "values": [["x"]],
                    },
                ],
            },
        )
    )
    (response,) = body["responses"]
    assert response["updatedRange"] == "Leads!C1:C3"
    assert response["updatedCells"] == 1
    assert response["dataFilter"] == {"developerMetadataLookup": {"metadataId": status}}
    assert response["updatedData"]["values"] == [["Status", "done", "=1+1"]]
    assert standin.values(book)[2] == ["Beta", "", "=1+1", "j2"]


def test_values_larger_than_the_filtered_range_fail_the_request(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    status = _tag(api, "COLUMNS", 1, "sheetbatch.column", "Status")
    response = api.post(
        "/values:batchUpdateByDataFilter",
        json={
            "valueInputOption": "RAW",
            "data": [
                {
                    "dataFilter": {"developerMetadataLookup": {"metadataId": status}},
                    "values": [["a", "b"]],  # two columns into one
                }
            ],
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert standin.values(book) == ROWS


def test_project_metadata_is_invisible_to_other_projects(
    standin: StandIn, api: httpx.Client, book: str
) -> None:
    _tag(api, "COLUMNS", 1, "sheetbatch.column", "Status")
    other = "tool@other-project.iam.gserviceaccount.com"
    standin.share(book, other)
    with _client(standin, other, book) as stranger:
        found = stranger.post(
            "/developerMetadata:search",
            json={
                "dataFilters": [{"developerMetadataLookup": {"metadataKey": "sheetbatch.column"}}]
            },
        )
        assert _ok(found) == {}


def test_metadata_validation(api: httpx.Client) -> None:
    response = api.post(
        str(api.base_url).rstrip("/") + ":batchUpdate",
        json={
            "requests": [
                {
                    "createDeveloperMetadata": {
                        "developerMetadata": {
                            "metadataKey": "k",
                            "visibility": "PROJECT",
                            "location": {
                                "dimensionRange": {
                                    "sheetId": 0,
                                    "dimension": "ROWS",
                                    "startIndex": 1,
                                    "endIndex": 3,
                                }
                            },
                        }
                    }
                }
            ]
        },
    )
    assert response.status_code == 400
    assert "single row or column" in response.json()["error"]["message"]


def test_delete_and_update_by_data_filter(api: httpx.Client) -> None:
    first = _tag(api, "COLUMNS", 0, "k", "a")
    _tag(api, "COLUMNS", 1, "k", "b")
    updated = _batch(
        api,
        {
            "updateDeveloperMetadata": {
                "dataFilters": [{"developerMetadataLookup": {"metadataId": first}}],
                "developerMetadata": {"metadataValue": "renamed"},
                "fields": "metadataValue",
            }
        },
        {
            "deleteDeveloperMetadata": {
                "dataFilter": {"developerMetadataLookup": {"metadataValue": "b"}}
            }
        },
    )
    assert (
        updated["replies"][0]["updateDeveloperMetadata"]["developerMetadata"][0]["metadataValue"]
        == "renamed"
    )
    (deleted,) = updated["replies"][1]["deleteDeveloperMetadata"]["deletedDeveloperMetadata"]
    assert deleted["metadataValue"] == "b"
    left = _ok(
        api.post(
            "/developerMetadata:search",
            json={"dataFilters": [{"developerMetadataLookup": {"metadataKey": "k"}}]},
        )
    )["matchedDeveloperMetadata"]
    assert [m["developerMetadata"]["metadataValue"] for m in left] == ["renamed"]


FIELDS = "sheets(properties(sheetId,title),data.columnMetadata.developerMetadata.metadataId)"


FIELDS = "sheets(properties(sheetId,title),data.columnMetadata.developerMetadata.metadataId)"


def test_get_by_data_filter_follows_the_sheet_id(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    status = _tag(api, "COLUMNS", 1, "sheetbatch.column", "Status")
    with standin.edit(book) as spreadsheet:
        spreadsheet.sheet("Leads").title = "Leads (old)"
        spreadsheet.duplicate(spreadsheet.sheet("Leads (old)"), "Leads")
    body = _ok(
        api.post(
            str(api.base_url).rstrip("/") + ":getByDataFilter",
            params={"fields": FIELDS},
            json={"dataFilters": [{"gridRange": {"sheetId": 0}}], "includeGridData": True},
        )
    )
    (sheet,) = body["sheets"]
    assert sheet["properties"] == {"sheetId": 0, "title": "Leads (old)"}
    columns = sheet["data"][0]["columnMetadata"]
    assert columns[1] == {"developerMetadata": [{"metadataId": status}]}
    assert columns[0] == {}
