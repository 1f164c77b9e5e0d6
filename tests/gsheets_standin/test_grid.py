"""Protected ranges, merges, hyperlinks and grid data over raw HTTP, as Google answers them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gspread
import httpx
import pytest
from gspread.utils import ValueRenderOption

from gsheets_standin import MAX_REQUEST_BYTES, Box, Formula, RichText, ServiceAccountKey, StandIn

PROTECTED = (
    "You are trying to edit a protected cell or object. Please contact the spreadsheet owner "
    "to remove protection if you need to edit."
)


@pytest.fixture
def book(standin: StandIn, service_account_key: ServiceAccountKey) -> str:
    return standin.create_spreadsheet(
        {
            "Sheet1": [
                ["Company", "Website", "Status"],
                ["Acme", Formula('=HYPERLINK("https://acme.example","Acme site")'), ""],
                ["Beta", RichText.linked("Beta home", "https://beta.example"), ""],
                [
                    "Gamma",
                    RichText("see gamma.example", ((0, None), (4, "https://gamma.example"))),
                    "",
                ],
            ]
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


def _write(api: httpx.Client, a1: str, values: list[list[Any]]) -> httpx.Response:
    return api.post(
        "/values:batchUpdate",
        json={"valueInputOption": "RAW", "data": [{"range": a1, "values": values}]},
    )


def test_a_protected_cell_fails_the_whole_write_as_google_does(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    with standin.edit(book) as spreadsheet:
        ws = spreadsheet.sheet()
        spreadsheet.protect(ws, Box(2, 2, 3, 3), description="Beta's status")  # C3
    response = _write(api, "Sheet1!C2:C3", [["ok"], ["blocked"]])
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": 400, "message": PROTECTED, "status": "INVALID_ARGUMENT"}
    }
    assert standin.values(book)[1][2:] == []  # nothing of the request was applied
    assert _write(api, "Sheet1!C2:C3", [["ok"], [None]]).status_code == 200  # null: unchanged
    ranges = api.get(_root(api), params={"fields": "sheets.protectedRanges"}).json()
    (protected,) = ranges["sheets"][0]["protectedRanges"]
    assert protected["range"] == {
        "startRowIndex": 2,
        "endRowIndex": 3,
        "startColumnIndex": 2,
        "endColumnIndex": 3,
    }
    assert "requestingUserCanEdit" not in protected  # false: left out, as Google does
    assert "editors" not in protected


def test_the_owner_and_editors_may_write_protected_cells(
    standin: StandIn, service_account_key: ServiceAccountKey, book: str
) -> None:
    with standin.edit(book) as spreadsheet:
        ws = spreadsheet.sheet()
        spreadsheet.protect(ws, Box(0, 2, None, 3), editors=[service_account_key.email])
    token = standin.issue_token(service_account_key.email)
    with httpx.Client(
        base_url=f"{standin.url}/v4/spreadsheets/{book}",
        headers={"Authorization": f"Bearer {token}"},
    ) as api:
        assert _write(api, "Sheet1!C2", [["mine"]]).status_code == 200


def test_merges_keep_only_the_top_left_value(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    root = str(api.base_url).rstrip("/")
    merge = {
        "mergeCells": {
            "range": {
                "sheetId": 0,
                "startRowIndex": 1,
                "endRowIndex": 2,
                "startColumnIndex": 0,
                "endColumnIndex": 3,
            }
        }
    }
    assert api.post(root + ":batchUpdate", json={"requests": [merge]}).status_code == 200
    assert standin.values(book)[1] == ["Acme"]
    body = _write(api, "Sheet1!A2:C2", [["A", "B", "C"]]).json()
    assert body["totalUpdatedCells"] == 1  # the hidden cells of a merge keep no value
    assert standin.values(book)[1] == ["A"]
    merges = api.get(_root(api), params={"fields": "sheets.merges"}).json()["sheets"][0]["merges"]
    assert merges == [{"startRowIndex": 1, "endRowIndex": 2, "endColumnIndex": 3}]
    with standin.edit(book) as spreadsheet:
        spreadsheet.sheet().insert_columns(0)
    merges = api.get(_root(api), params={"fields": "sheets.merges"}).json()["sheets"][0]["merges"]
    assert merges == [
        {"startRowIndex": 1, "endRowIndex": 2, "startColumnIndex": 1, "endColumnIndex": 4}
    ]


def test_hyperlink_formulas_show_their_label(gc: gspread.Client, book: str) -> None:
    ws = gc.open_by_key(book).sheet1
    assert ws.get_all_values()[1:] == [
        ["Acme", "Acme site", ""],
        ["Beta", "Beta home", ""],
        ["Gamma", "see gamma.example", ""],
    ]
    formulas = ws.get("B2:B3", value_render_option=ValueRenderOption.formula)
    assert formulas == [['=HYPERLINK("https://acme.example","Acme site")'], ["Beta home"]]


def test_grid_data_carries_hyperlinks_and_text_runs(api: httpx.Client) -> None:
    body = api.get(
        _root(api),
        params={
            "ranges": "Sheet1!B2:B4",
            "includeGridData": "true",
            "fields": "sheets.data.rowData.values(hyperlink,textFormatRuns)",
        },
    ).json()
    rows = body["sheets"][0]["data"][0]["rowData"]
    assert rows[0] == {"values": [{"hyperlink": "https://acme.example"}]}
    assert rows[1] == {
        "values": [
            {
                "hyperlink": "https://beta.example",
                "textFormatRuns": [{"format": {"link": {"uri": "https://beta.example"}}}],
            }
        ]
    }
    assert rows[2] == {
        "values": [
            {
                "textFormatRuns": [
                    {"format": {}},
                    {"startIndex": 4, "format": {"link": {"uri": "https://gamma.example"}}},
                ]
            }
        ]
    }


def test_update_cells_can_link_text(api: httpx.Client, standin: StandIn, book: str) -> None:
    root = str(api.base_url).rstrip("/")
    request = {
        "updateCells": {
            "start": {"sheetId": 0, "rowIndex": 1, "columnIndex": 0},
            "rows": [
                {
                    "values": [
                        {"textFormatRuns": [{"format": {"link": {"uri": "https://acme.example"}}}]}
                    ]
                }
            ],
            "fields": "textFormatRuns",
        }
    }
    assert api.post(root + ":batchUpdate", json={"requests": [request]}).status_code == 200
    with standin.edit(book) as spreadsheet:
        assert spreadsheet.sheet().get(1, 0) == RichText.linked("Acme", "https://acme.example")


def test_request_bodies_over_10_mb_are_refused(
    api: httpx.Client, standin: StandIn, book: str
) -> None:
    big = "x" * 40_000
    rows = [[big] for _ in range(MAX_REQUEST_BYTES // len(big) + 1)]
    response = api.post(
        "/values:batchUpdate",
        json={"valueInputOption": "RAW", "data": [{"range": "Sheet1!D1", "values": rows}]},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
    )
    assert standin.log[-1].size > MAX_REQUEST_BYTES
