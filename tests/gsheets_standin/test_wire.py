"""The stand-in's answers, over raw HTTP, against the documented Sheets v4 shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gsheets_standin import Formula, ManualClock, ServiceAccountKey, StandIn


@pytest.fixture
def book(standin: StandIn, service_account_key: ServiceAccountKey) -> str:
    return standin.create_spreadsheet(
        {
            "Sheet1": [
                ["Name", "Zip", "Note"],
                ["Acme", "00123", ""],
                ["", "", ""],
                ["Beta", 42, True],
            ],
            "My Sheet": [["a", "b"], ["c", Formula("=1+1")]],
        },
        shared_with=[service_account_key.email],
    )


@pytest.fixture
def api(
    standin: StandIn, service_account_key: ServiceAccountKey, book: str
) -> Iterator[httpx.Client]:
    token = standin.issue_token(service_account_key.email)
    with httpx.Client(
        base_url=f"{standin.url}/v4/spreadsheets/{book}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ) as client:
        yield client


def _root(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/")


def _values(api: httpx.Client, a1: str, **params: str) -> dict[str, Any]:
    response = api.get(f"/values/{quote(a1, safe='')}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_spreadsheet_metadata_has_sheet_properties(api: httpx.Client, book: str) -> None:
    body = api.get(_root(api), params={"includeGridData": "false"}).json()
    assert body["spreadsheetId"] == book
    first, second = body["sheets"]
    assert first["properties"] == {
        "sheetId": 0,
        "title": "Sheet1",
        "index": 0,
        "sheetType": "GRID",
        "gridProperties": {"rowCount": 1000, "columnCount": 26},
    }
    assert second["properties"]["title"] == "My Sheet"
    assert body["properties"]["title"]


def test_whole_sheet_read_is_grid_bounded_and_trimmed(api: httpx.Client) -> None:
    body = _values(api, "Sheet1")
    assert body == {
        "range": "Sheet1!A1:Z1000",
        "majorDimension": "ROWS",
        "values": [["Name", "Zip", "Note"], ["Acme", "00123"], [], ["Beta", "42", "TRUE"]],
    }


def test_quoted_and_percent_encoded_sheet_names(api: httpx.Client) -> None:
    encoded = api.get("/values/%27My%20Sheet%27%21A1%3AB2").json()
    assert encoded["range"] == "'My Sheet'!A1:B2"
    assert encoded["values"] == [["a", "b"], ["c", "2"]]
    assert _values(api, "'My Sheet'!A:A")["range"] == "'My Sheet'!A1:A1000"


def test_whole_column_and_row_ranges(api: httpx.Client) -> None:
    column = _values(api, "Sheet1!B:B")
    assert column["range"] == "Sheet1!B1:B1000"
    assert column["values"] == [["Zip"], ["00123"], [], ["42"]]
    row = _values(api, "Sheet1!1:1")
    assert row == {"range": "Sheet1!A1:Z1", "majorDimension": "ROWS", "values": [row["values"][0]]}
    assert _values(api, "Sheet1!A2:B")["range"] == "Sheet1!A2:B1000"


def test_empty_range_has_no_values_key(api: httpx.Client) -> None:
    assert _values(api, "Sheet1!D5:E6") == {"range": "Sheet1!D5:E6", "majorDimension": "ROWS"}


def test_major_dimension_columns(api: httpx.Client) -> None:
    body = _values(api, "Sheet1!A1:B4", majorDimension="COLUMNS")
    assert body["values"] == [["Name", "Acme", "", "Beta"], ["Zip", "00123", "", "42"]]


def test_value_render_options(api: httpx.Client) -> None:
    formatted = _values(api, "'My Sheet'!B2")
    unformatted = _values(api, "'My Sheet'!B2", valueRenderOption="UNFORMATTED_VALUE")
    formula = _values(api, "'My Sheet'!B2", valueRenderOption="FORMULA")
    assert (formatted["values"], unformatted["values"], formula["values"]) == (
        [["2"]],
        [[2]],
        [["=1+1"]],
    )
    typed = _values(api, "Sheet1!B4:C4", valueRenderOption="UNFORMATTED_VALUE")
    assert typed["values"] == [[42, True]]


def test_raw_keeps_text_and_user_entered_parses_it(api: httpx.Client) -> None:
    row = ["=1+1", "123", "00123", "TRUE", "'00123"]
    for option, cell in (("RAW", "A10"), ("USER_ENTERED", "A11")):
        response = api.put(
            f"/values/{quote('Sheet1!' + cell, safe='')}",
            params={"valueInputOption": option},
            json={"values": [row], "majorDimension": None},
        )
        assert response.status_code == 200, response.text
    raw, entered = _values(api, "Sheet1!A10:E11", valueRenderOption="UNFORMATTED_VALUE")["values"]
    assert raw == row
    assert entered == [2, 123, 123, True, "00123"]
    formulas = _values(api, "Sheet1!A10:A11", valueRenderOption="FORMULA")["values"]
    assert formulas == [["=1+1"], ["=1+1"]]


def test_update_response_shape(api: httpx.Client, book: str) -> None:
    response = api.put(
        "/values/Sheet1%21B2",
        params={"valueInputOption": "RAW"},
        json={"range": "Sheet1!B2", "values": [["x", "y"], ["z"]]},
    )
    assert response.json() == {
        "spreadsheetId": book,
        "updatedRange": "Sheet1!B2:C3",
        "updatedRows": 2,
        "updatedColumns": 2,
        "updatedCells": 3,
    }


def test_null_leaves_a_cell_unchanged_and_empty_string_clears_it(api: httpx.Client) -> None:
    response = api.post(
        "/values:batchUpdate",
        json={
            "valueInputOption": "RAW",
            "includeValuesInResponse": None,
            "data": [
                {"range": "Sheet1!A2:C2", "values": [[None, "", "new"]], "majorDimension": None}
            ],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["totalUpdatedCells"] == 2
    assert _values(api, "Sheet1!A2:C2")["values"] == [["Acme", "", "new"]]


def test_values_batch_update_is_all_or_nothing(api: httpx.Client) -> None:
    response = api.post(
        "/values:batchUpdate",
        json={
            "valueInputOption": "RAW",
            "data": [
                {"range": "Sheet1!A2", "values": [["changed"]]},
                {"range": "Nowhere!A1", "values": [["x"]]},
            ],
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Unable to parse range: Nowhere!A1"
    assert _values(api, "Sheet1!A2")["values"] == [["Acme"]]


def test_batch_get(api: httpx.Client, book: str) -> None:
    response = api.get(
        "/values:batchGet", params=[("ranges", "Sheet1!1:1"), ("ranges", "Sheet1!B:B")]
    )
    body = response.json()
    assert body["spreadsheetId"] == book
    assert [v["range"] for v in body["valueRanges"]] == ["Sheet1!A1:Z1", "Sheet1!B1:B1000"]


def test_append_writes_after_the_table(api: httpx.Client, book: str) -> None:
    response = api.post(
        "/values/%27My%20Sheet%27:append",
        params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
        json={"values": [["d", "e"]]},
    )
    body = response.json()
    assert body["tableRange"] == "'My Sheet'!A1:B2"
    assert body["updates"] == {
        "spreadsheetId": book,
        "updatedRange": "'My Sheet'!A3:B3",
        "updatedRows": 1,
        "updatedColumns": 2,
        "updatedCells": 2,
    }
    assert _values(api, "'My Sheet'")["values"][-1] == ["d", "e"]


def test_clear(api: httpx.Client, book: str) -> None:
    body = api.post("/values/Sheet1%21A2%3AC2:clear", json={}).json()
    assert body == {"spreadsheetId": book, "clearedRange": "Sheet1!A2:C2"}
    assert _values(api, "Sheet1!A1:C2")["values"] == [["Name", "Zip", "Note"]]


def test_structural_batch_update(api: httpx.Client, standin: StandIn, book: str) -> None:
    response = api.post(
        _root(api) + ":batchUpdate",
        json={
            "requests": [
                {
                    "insertDimension": {
                        "range": {
                            "sheetId": 0,
                            "dimension": "ROWS",
                            "startIndex": 1,
                            "endIndex": 2,
                        },
                        "inheritFromBefore": False,
                    }
                },
                {
                    "deleteDimension": {
                        "range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 3, "endIndex": 4}
                    }
                },
                {
                    "sortRange": {
                        "range": {"sheetId": 0, "startRowIndex": 1},
                        "sortSpecs": [{"dimensionIndex": 0, "sortOrder": "DESCENDING"}],
                    }
                },
                {"appendDimension": {"sheetId": 0, "dimension": "COLUMNS", "length": 4}},
                {
                    "updateSheetProperties": {
                        "properties": {
                            "sheetId": 0,
                            "title": "Main",
                            "gridProperties": {"frozenRowCount": 1},
                        },
                        "fields": "title,gridProperties.frozenRowCount",
                    }
                },
                {
                    "addSheet": {
                        "properties": {
                            "title": "Extra",
                            "gridProperties": {"rowCount": 10, "columnCount": 3},
                        }
                    }
                },
                {
                    "updateCells": {
                        "start": {"sheetId": 0, "rowIndex": 0, "columnIndex": 26},
                        "rows": [
                            {"values": [{"userEnteredValue": {"stringValue": "=not a formula"}}]}
                        ],
                        "fields": "userEnteredValue",
                    }
                },
            ]
        },
    )
    assert response.status_code == 200, response.text
    replies = response.json()["replies"]
    assert replies[:5] == [{}, {}, {}, {}, {}]
    added = replies[5]["addSheet"]["properties"]
    assert (added["title"], added["gridProperties"]) == (
        "Extra",
        {"rowCount": 10, "columnCount": 3},
    )
    assert standin.values(book, "Main") == [
        ["Name", "Zip", "Note", *[""] * 23, "=not a formula"],
        ["Beta", "42", "TRUE"],
        ["Acme", "00123"],
    ]
    sheet = api.get(_root(api)).json()["sheets"][0]["properties"]
    assert sheet["gridProperties"] == {"rowCount": 1000, "columnCount": 30, "frozenRowCount": 1}


def test_structural_batch_update_is_all_or_nothing(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    before = standin.values(book, "Sheet1")
    response = api.post(
        _root(api) + ":batchUpdate",
        json={
            "requests": [
                {
                    "deleteDimension": {
                        "range": {"sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 2}
                    }
                },
                {
                    "deleteDimension": {
                        "range": {
                            "sheetId": 404,
                            "dimension": "ROWS",
                            "startIndex": 1,
                            "endIndex": 2,
                        }
                    }
                },
            ]
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid requests[1].deleteDimension")
    assert standin.values(book, "Sheet1") == before


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    return body["error"]


def test_unparsable_range_error_body(api: httpx.Client) -> None:
    response = api.get("/values/Nope%21A1")
    assert response.status_code == 400
    assert _error(response) == {
        "code": 400,
        "message": "Unable to parse range: Nope!A1",
        "status": "INVALID_ARGUMENT",
    }


def test_writes_outside_the_grid_are_refused(api: httpx.Client) -> None:
    response = api.put(
        "/values/Sheet1%21AA1", params={"valueInputOption": "RAW"}, json={"values": [["x"]]}
    )
    assert response.status_code == 400
    assert _error(response)["message"] == (
        "Range (Sheet1!AA1) exceeds grid limits. Max rows: 1000, max columns: 26"
    )


def test_value_input_option_is_required(api: httpx.Client) -> None:
    response = api.post("/values:batchUpdate", json={"data": []})
    assert _error(response)["message"] == "'valueInputOption' is required but not specified"


def test_invalid_json_is_refused(api: httpx.Client) -> None:
    response = api.post(
        _root(api) + ":batchUpdate",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert _error(response)["status"] == "INVALID_ARGUMENT"


def test_missing_spreadsheet_is_404(
    standin: StandIn, service_account_key: ServiceAccountKey
) -> None:
    token = standin.issue_token(service_account_key.email)
    response = httpx.get(
        f"{standin.url}/v4/spreadsheets/missing", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 404
    assert _error(response) == {
        "code": 404,
        "message": "Requested entity was not found.",
        "status": "NOT_FOUND",
    }


def test_unshared_spreadsheet_is_403(standin: StandIn, book: str) -> None:
    token = standin.issue_token("stranger@other.iam.gserviceaccount.com")
    response = httpx.get(
        f"{standin.url}/v4/spreadsheets/{book}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert _error(response) == {
        "code": 403,
        "message": "The caller does not have permission",
        "status": "PERMISSION_DENIED",
    }


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [(None, "CREDENTIALS_MISSING"), ("Bearer forged", "ACCESS_TOKEN_TYPE_UNSUPPORTED")],
)
def test_requests_without_a_valid_bearer_are_401(
    standin: StandIn, book: str, authorization: str | None, reason: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{standin.url}/v4/spreadsheets/{book}", headers=headers)
    assert response.status_code == 401
    error = _error(response)
    assert error["status"] == "UNAUTHENTICATED"
    assert error["details"][0]["reason"] == reason
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_quota_error_has_googles_shape(api: httpx.Client, standin_clock: ManualClock) -> None:
    for _ in range(60):
        assert api.get("/values/Sheet1%21A1").status_code == 200
    response = api.get("/values/Sheet1%21A1")
    assert response.status_code == 429
    error = _error(response)
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "Read requests per minute per user" in error["message"]
    info = error["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (info["reason"], info["domain"]) == ("RATE_LIMIT_EXCEEDED", "googleapis.com")
    assert info["metadata"]["quota_limit"] == "ReadRequestsPerMinutePerUser"
    assert info["metadata"]["quota_metric"] == "sheets.googleapis.com/read_requests"
    assert info["metadata"]["service"] == "sheets.googleapis.com"
    # Writes have their own quota, and the minute refills.
    assert (
        api.post("/values:batchUpdate", json={"valueInputOption": "RAW", "data": []}).status_code
        == 200
    )
    standin_clock.advance(60)
    assert api.get("/values/Sheet1%21A1").status_code == 200


def test_unknown_paths_are_404(standin: StandIn) -> None:
    assert httpx.get(f"{standin.url}/v3/whatever").status_code == 404
