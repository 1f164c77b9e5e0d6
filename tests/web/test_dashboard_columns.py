"""The dashboard's start form maps output columns, allows overwrites and says when there is
nothing to do, in Debian's Chromium against the real server."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from progress import Store
from tests.web.proxy import Proxy
from tests.web.support import wait_for
from tests.web.test_dashboard import (
    ARTIFACTS,
    WATCHDOG,
    browser,
    page,
    proxy,
    sheets,
    ui_server,
    ui_store,
    wait_finished,
)

pytestmark = pytest.mark.browser

__all__ = ["browser", "page", "proxy", "sheets", "ui_server", "ui_store"]


def test_the_start_form_maps_columns_and_says_when_nothing_is_to_do(
    page: Any, proxy: Proxy, ui_store: Store, sheets: Path
) -> None:
    sheet = sheets / "contacts.csv"
    with sheet.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(
            [
                ["Company", "Website", "Name"],
                ["Acme", "https://ok1.test", "Alice Smith (our contact)"],
                ["Beta", "https://ok2.test", ""],
            ]
        )
    before = sheet.read_bytes()
    page.goto(f"{proxy.url}/?watchdog={WATCHDOG}")
    page.wait_for_selector('body[data-sheets-loaded="1"]')
    page.select_option("#sheet", str(sheet))
    page.click("#start-form button[type=submit]")
    page.wait_for_selector("#start-error:has-text('output_columns:')")
    assert "column 'Name' holds values sheetbatch did not write" in page.inner_text("#start-error")
    assert sheet.read_bytes() == before
    page.fill("#output_columns", "Name")
    page.click("#start-form button[type=submit]")
    page.wait_for_selector("#start-error:has-text('write OUTPUT=COLUMN')")
    page.fill("#output_columns", "Name=Found name, Error=Our error")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/batches/b-*")
    batch_id = page.url.rsplit("/", 1)[1].split("?")[0]
    wait_finished(page)
    assert ui_store.batch(batch_id)["options"]["output_columns"] == {
        "Name": "Found name",
        "Error": "Our error",
    }

    def written() -> list[dict[str, str]]:
        with sheet.open(newline="", encoding="utf-8") as f:
            found = list(csv.DictReader(f, restval=""))
        return found if all(r.get("Status") == "completed" for r in found) else []

    # The sheet writer's final flush follows the batch's end in the store.
    rows = wait_for(written)
    assert [r["Name"] for r in rows] == ["Alice Smith (our contact)", ""]
    assert [r["Found name"] for r in rows] == ["ACME", "BETA"]
    # The same request again: nothing to do, said on the form, no batch recorded.
    count = len(ui_store.batches(limit=500))
    page.goto(f"{proxy.url}/?watchdog={WATCHDOG}")
    page.wait_for_selector('body[data-sheets-loaded="1"]')
    page.select_option("#sheet", str(sheet))
    page.fill("#output_columns", "Name=Found name, Error=Our error")
    page.click("#start-form button[type=submit]")
    page.wait_for_selector("#start-note:has-text('nothing to do')")
    assert "2 rows already completed" in page.inner_text("#start-note")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "start-form-nothing-to-do.png"), full_page=True)
    assert len(ui_store.batches(limit=500)) == count
