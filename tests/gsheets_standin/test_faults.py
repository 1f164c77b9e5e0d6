"""Fault and latency injection, quotas, the operator hook and the request log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import gspread
import httpx
import pytest
import requests
from google.auth.exceptions import RefreshError

from gsheets_standin import (
    Fault,
    ManualClock,
    QuotaLimits,
    ServiceAccountKey,
    Spreadsheet,
    StandIn,
)
from tests.support.google import gspread_client


@pytest.fixture
def key(standin: StandIn, service_account_key: ServiceAccountKey) -> str:
    return standin.create_spreadsheet(
        {"Sheet1": [["Name"], ["b"], ["a"], ["c"]]}, shared_with=[service_account_key.email]
    )


@pytest.fixture
def ws(gc: gspread.Client, key: str) -> gspread.Worksheet:
    return gc.open_by_key(key).sheet1


@pytest.fixture
def api(
    standin: StandIn, service_account_key: ServiceAccountKey, key: str
) -> Iterator[httpx.Client]:
    token = standin.issue_token(service_account_key.email)
    with httpx.Client(
        base_url=f"{standin.url}/v4/spreadsheets/{key}/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=0.5,
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        (Fault.INTERNAL, 500, "INTERNAL"),
        (Fault.UNAVAILABLE, 503, "UNAVAILABLE"),
        (Fault.RATE_LIMITED, 429, "RESOURCE_EXHAUSTED"),
    ],
)
def test_error_faults_answer_the_next_requests(
    ws: gspread.Worksheet, standin: StandIn, fault: Fault, code: int, status: str
) -> None:
    standin.inject(fault, times=2)
    for _ in range(2):
        with pytest.raises(gspread.exceptions.APIError) as caught:
            ws.acell("A1")
        assert (caught.value.code, caught.value.error["status"]) == (code, status)
    assert ws.acell("A1").value == "Name"


def test_faults_can_target_writes_only(ws: gspread.Worksheet, standin: StandIn) -> None:
    standin.inject(Fault.UNAVAILABLE, kind="write")
    assert ws.acell("A2").value == "b"
    with pytest.raises(gspread.exceptions.APIError):
        ws.update_acell("A2", "changed")
    ws.update_acell("A2", "changed")
    assert ws.acell("A2").value == "changed"


def test_timeout_fault_holds_the_request_unprocessed(
    api: httpx.Client, standin: StandIn, key: str
) -> None:
    standin.inject(Fault.TIMEOUT, kind="write", delay=5)
    with pytest.raises(httpx.ReadTimeout):
        api.put("values/Sheet1%21A2", params={"valueInputOption": "RAW"}, json={"values": [["x"]]})
    assert standin.values(key)[1] == ["b"]
    assert api.get("values/Sheet1%21A2").json()["values"] == [["b"]]
    dropped = [r for r in standin.log if r.fault]
    assert [(r.route, r.status, r.fault) for r in dropped] == [("values.update", 0, "timeout")]


def test_stop_does_not_wait_for_a_held_request(
    standin_clock: ManualClock, session_service_account_key: ServiceAccountKey
) -> None:
    server = StandIn(clock=standin_clock).start()
    key = server.register_service_account(session_service_account_key)
    book = server.create_spreadsheet(shared_with=[key.email])
    server.inject(Fault.TIMEOUT, delay=60)
    token = server.issue_token(key.email)
    with (
        httpx.Client(timeout=0.3, headers={"Authorization": f"Bearer {token}"}) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get(f"{server.url}/v4/spreadsheets/{book}")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2


def test_reset_fault_breaks_the_connection(ws: gspread.Worksheet, standin: StandIn) -> None:
    standin.inject(Fault.RESET)
    with pytest.raises(requests.exceptions.ConnectionError):
        ws.acell("A1")
    assert ws.acell("A1").value == "Name"
    assert standin.log[-2].fault == "reset"


def test_latency_is_added_to_api_requests(api: httpx.Client, standin: StandIn) -> None:
    standin.latency = 0.2
    started = time.monotonic()
    api.get("values/Sheet1%21A1")
    assert time.monotonic() - started >= 0.2


def test_token_endpoint_faults(standin: StandIn) -> None:
    standin.inject(Fault.UNAVAILABLE, kind="token")
    response = httpx.post(standin.token_url, data={"grant_type": "x"})
    assert response.status_code == 503
    again = httpx.post(standin.token_url, data={"grant_type": "x"})
    assert again.json()["error"] == "unsupported_grant_type"


def test_project_quota_spans_users(
    standin: StandIn, key: str, service_account_key: ServiceAccountKey, standin_clock: ManualClock
) -> None:
    standin.set_quota(QuotaLimits(read_per_user=100, read_per_project=3))
    other = "other@standin-project.iam.gserviceaccount.com"
    standin.share(key, other)
    tokens = [standin.issue_token(service_account_key.email), standin.issue_token(other)]
    url = f"{standin.url}/v4/spreadsheets/{key}"
    codes = [
        httpx.get(url, headers={"Authorization": f"Bearer {tokens[i % 2]}"}).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    last = standin.log[-1]
    assert (last.user, last.status, last.at) == (other, 429, standin_clock.now())
    response = httpx.get(url, headers={"Authorization": f"Bearer {tokens[0]}"})
    metadata = response.json()["error"]["details"][0]["metadata"]
    assert metadata["quota_limit"] == "ReadRequestsPerMinutePerProject"
    standin.set_quota(None)
    assert httpx.get(url, headers={"Authorization": f"Bearer {tokens[0]}"}).status_code == 200


def test_operator_hook_runs_between_a_read_and_the_next_write(
    ws: gspread.Worksheet, standin: StandIn, key: str
) -> None:
    seen: list[list[list[str]]] = []

    def operator(book: Spreadsheet) -> None:
        sheet = book.sheet()
        seen.append(sheet.formatted())
        sheet.sort_by(0)
        sheet.insert_rows(1)

    ws.update_acell("B1", "Status")
    standin.between_read_and_write(operator)
    ws.update_acell("C1", "")  # a write that follows a write: no hook
    assert seen == []
    assert ws.col_values(1) == ["Name", "b", "a", "c"]
    ws.update_acell("B2", "written")  # lands where B2 is *after* the operator's edit
    assert seen == [[["Name", "Status"], ["b"], ["a"], ["c"]]]
    assert standin.values(key) == [["Name", "Status"], ["", "written"], ["a"], ["b"], ["c"]]
    ws.col_values(1)
    ws.update_acell("B3", "again")  # the hook ran its one time
    assert len(seen) == 1


def test_hooks_run_before_a_chosen_request_or_on_the_clock(
    ws: gspread.Worksheet, standin: StandIn, key: str, standin_clock: ManualClock
) -> None:
    edits: list[str] = []
    standin.before(lambda book: edits.append("second write"), kind="write", skip=1)
    standin.at_time(standin_clock.now() + 30, lambda book: edits.append("timer"))
    ws.update_acell("B1", "one")
    ws.acell("A1")
    assert edits == []
    ws.update_acell("B1", "two")
    assert edits == ["second write"]
    standin_clock.advance(29)
    ws.acell("A1")
    assert edits == ["second write"]
    standin_clock.advance(1)
    ws.acell("A1")  # the first request once the clock reached the time: a read here
    assert edits == ["second write", "timer"]
    ws.acell("A1")
    assert edits == ["second write", "timer"]


def test_a_signer_with_a_wrong_clock_is_refused_as_google_does(
    service_account_key: ServiceAccountKey, tmp_path: Path
) -> None:
    with StandIn(wall=lambda: time.time() - 3600) as skewed:
        key = skewed.register_service_account(service_account_key)
        client = gspread_client(skewed, key)
        book = skewed.create_spreadsheet(shared_with=[key.email])
        with pytest.raises(RefreshError) as caught:
            client.open_by_key(book)
        assert caught.value.args[1] == {
            "error": "invalid_grant",
            "error_description": (
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim."
            ),
        }
        client.http_client.session.close()


def test_request_log_records_each_request(ws: gspread.Worksheet, standin: StandIn) -> None:
    standin.clear_log()
    ws.get("A1:A2")
    ws.update([["x"]], "B2")
    first, second = standin.log
    assert (first.method, first.route, first.kind, first.status) == (
        "GET",
        "values.get",
        "read",
        200,
    )
    assert first.path.endswith("/values/%27Sheet1%27%21A1%3AA2")
    assert (second.method, second.route, second.kind) == ("PUT", "values.update", "write")
    assert standin.count(kind="write", status=200) == 1


def test_lifecycle() -> None:
    server = StandIn()
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.start() is server
        with requests.Session() as session:  # a keep-alive connection left open
            assert session.get(server.url + "/nope", timeout=2).status_code == 404
            server.stop()
    server.stop()
    with pytest.raises(ValueError):
        StandIn(host="0.0.0.0")
