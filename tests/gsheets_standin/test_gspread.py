"""Unmodified gspread against the stand-in: the calls our backend and operators rely on."""

from __future__ import annotations

import gspread
import pytest
from gspread.utils import ValueRenderOption

from gsheets_standin import ServiceAccountKey, StandIn
from tests.support.google import gspread_client


@pytest.fixture
def key(standin: StandIn, service_account_key: ServiceAccountKey) -> str:
    return standin.create_spreadsheet(
        {"Companies": [["Name", "Zip"], ["Acme", "00123"], ["Beta", "00456"]], "My Sheet": []},
        title="Leads",
        shared_with=[service_account_key.email],
    )


def test_open_read_and_worksheets(gc: gspread.Client, key: str) -> None:
    sh = gc.open_by_key(key)
    assert sh.title == "Leads"
    assert [ws.title for ws in sh.worksheets()] == ["Companies", "My Sheet"]
    ws = sh.worksheet("Companies")
    assert ws.get_all_values() == [["Name", "Zip"], ["Acme", "00123"], ["Beta", "00456"]]
    assert ws.get("B2", value_render_option=ValueRenderOption.unformatted) == [["00123"]]
    assert (ws.row_count, ws.col_count) == (1000, 26)
    url = f"https://docs.google.com/spreadsheets/d/{key}/edit#gid=0"
    assert gc.open_by_url(url).id == key


def test_updates_raw_and_user_entered(gc: gspread.Client, key: str) -> None:
    ws = gc.open_by_key(key).worksheet("My Sheet")
    ws.update([["=1+1", "007"]], "A1")
    ws.update([["=1+1", "007"]], "A2", raw=False)
    ws.batch_update([{"range": "C1:D1", "values": [["x", "=2*3"]]}])
    assert ws.get_all_values() == [["=1+1", "007", "x", "=2*3"], ["2", "7", "", ""]]
    formulas = ws.get("A1:B2", value_render_option=ValueRenderOption.formula)
    assert formulas == [["=1+1", "007"], ["=1+1", 7]]


def test_rows_inserted_appended_deleted_and_sorted(gc: gspread.Client, key: str) -> None:
    ws = gc.open_by_key(key).worksheet("Companies")
    ws.append_rows([["Zeta", "00999"]])
    ws.insert_rows([["Alpha", "00001"]], row=2)
    ws.delete_rows(3)  # Acme
    ws.sort((1, "des"), range="A2:B4")
    assert ws.get_all_values() == [
        ["Name", "Zip"],
        ["Zeta", "00999"],
        ["Beta", "00456"],
        ["Alpha", "00001"],
    ]


def test_resize_add_rename_and_delete_worksheets(gc: gspread.Client, key: str) -> None:
    sh = gc.open_by_key(key)
    ws = sh.worksheet("Companies")
    ws.resize(rows=50, cols=4)
    ws.add_cols(2)
    ws.update_title("Firms")
    extra = sh.add_worksheet("Extra", rows=5, cols=5)
    fresh = sh.worksheet("Firms")
    assert (fresh.row_count, fresh.col_count) == (50, 6)
    sh.del_worksheet(extra)
    assert [w.title for w in sh.worksheets()] == ["Firms", "My Sheet"]
    with pytest.raises(gspread.exceptions.WorksheetNotFound):
        sh.worksheet("Extra")


def test_missing_and_unshared_spreadsheets(
    gc: gspread.Client, standin: StandIn, service_account_key: ServiceAccountKey
) -> None:
    with pytest.raises(gspread.exceptions.SpreadsheetNotFound):
        gc.open_by_key("1" + "x" * 43)
    private = standin.create_spreadsheet(shared_with=["someone@else.com"])
    with pytest.raises(PermissionError):
        gc.open_by_key(private)
    standin.share(private, service_account_key.email)
    assert gc.open_by_key(private).id == private


def test_api_error_carries_googles_body(gc: gspread.Client, key: str) -> None:
    ws = gc.open_by_key(key).sheet1
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.get("'No such tab'!A1")
    assert caught.value.code == 400
    assert caught.value.error == {
        "code": 400,
        "message": "Unable to parse range: 'Companies'!'No such tab'!A1",
        "status": "INVALID_ARGUMENT",
    }


def test_token_refresh_after_a_401(gc: gspread.Client, standin: StandIn, key: str) -> None:
    sh = gc.open_by_key(key)
    standin.clear_log()
    standin.fail_auth()
    assert sh.sheet1.acell("A2").value == "Acme"
    assert [(r.route, r.status) for r in standin.log] == [
        ("spreadsheets.get", 401),
        ("token", 200),
        ("spreadsheets.get", 200),
        ("values.get", 200),
    ]


def test_revoked_tokens_are_refreshed(gc: gspread.Client, standin: StandIn, key: str) -> None:
    ws = gc.open_by_key(key).sheet1
    standin.revoke_tokens()
    assert ws.acell("A3").value == "Beta"
    assert standin.count(route="token") == 2


def test_a_foreign_key_cannot_get_a_token(
    standin: StandIn, key: str, session_service_account_key: ServiceAccountKey
) -> None:
    # Never registered with this stand-in: the token endpoint refuses the assertion.
    from google.auth.exceptions import RefreshError

    from gsheets_standin import generate_service_account_key

    stranger = generate_service_account_key("x@y.iam.gserviceaccount.com", standin.token_url)
    client = gspread_client(standin, stranger)
    try:
        with pytest.raises(RefreshError, match="invalid_grant"):
            client.open_by_key(key)
    finally:
        client.http_client.session.close()
