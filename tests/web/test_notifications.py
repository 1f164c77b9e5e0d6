"""Notifications through `sheetbatch serve`: `notify` in POST /api/batches (SSRF rules),
the server's own sender delivering (no scheduler child: serve drains by itself), signed,
`GET /api/batches/<id>/notifications`, and the dashboard's start form and batch page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import standardwebhooks

from tests.support.receiver import Receiver
from tests.web.support import (
    Server,
    companies,
    server_env,
    start_batch,
    start_server,
    wait_batch_done,
    wait_for,
    write_sheet,
)
from tests.web.test_dashboard import browser, page  # noqa: F401 (fixtures)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def notify_server(tmp_path_factory: pytest.TempPathFactory, hook: Receiver) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("notify")
    server = start_server(
        workdir,
        f"sqlite:///{workdir / 'notify.db'}",
        args=["--no-scheduler", "--allow-host", hook.allow, "--ping-interval", "0.5"],
        env=server_env(SHEETBATCH_WEBHOOK_SECRET=SECRET, SHEETBATCH_TEST_PHASE_SECONDS="0.05"),
    )
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output()


def _notifications(client: httpx.Client, batch_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"/api/batches/{batch_id}/notifications")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["notifications"]
    return found


def test_a_batch_started_by_the_api_is_told_signed_and_listed(
    notify_server: Server, hook: Receiver
) -> None:
    sheet = write_sheet(notify_server.sheets / "api.csv", companies(3, fail_every=3))
    with notify_server.client() as client:
        refused = client.post(
            "/api/batches", json={"sheet": str(sheet), "notify": ["http://10.9.8.7/hook"]}
        )
        assert refused.status_code == 422 and refused.json()["field"] == "notify"
        assert "blocked private address 10.9.8.7" in refused.json()["error"]
        before = len(hook.requests)
        batch_id = start_batch(client, sheet, notify=[hook.url])
        wait_batch_done(client, batch_id)
        (delivered,) = wait_for(
            lambda: (
                [n for n in _notifications(client, batch_id) if n["state"] == "delivered"] or None
            )
        )
        assert client.get("/api/batches/b-000000000000/notifications").status_code == 404
    request = hook.requests[before]
    body = standardwebhooks.Webhook(SECRET).verify(request.body, request.headers)
    assert body["type"] == "batch.failed" and body["data"]["batch_id"] == batch_id
    assert body["data"]["counts"] == {"succeeded": 2, "failed": 1, "cancelled": 0}
    assert request.headers["webhook-id"] == delivered["id"]
    assert [a["status"] for a in delivered["attempts"]] == [200]


@pytest.mark.browser
def test_the_dashboard_starts_a_batch_with_notify_and_shows_its_delivery(
    page: Any,  # noqa: F811
    notify_server: Server,
    hook: Receiver,
) -> None:
    sheet = write_sheet(notify_server.sheets / "form.csv", companies(2))
    page.goto(f"{notify_server.url}/")
    page.wait_for_selector('body[data-sheets-loaded="1"]')
    page.select_option("#sheet", str(sheet))
    page.fill("#notify", hook.url)
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/batches/b-*")
    batch_id = page.url.rsplit("/", 1)[1].split("?")[0]
    row = page.wait_for_selector('#notifications tbody tr[data-state="delivered"]')
    cells = row.eval_on_selector_all("td", "tds => tds.map(td => td.textContent)")
    assert cells[:4] == ["batch.completed", hook.url, "delivered", "1"]
    assert page.is_hidden("#no-notifications")
    assert any(r.json()["data"]["batch_id"] == batch_id for r in hook.requests)
