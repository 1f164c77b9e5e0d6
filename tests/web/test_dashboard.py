"""The dashboard in Debian's Chromium, driven by Playwright, against the real server.

The browser reaches the server through a proxy the test controls, so the live stream can be
blackholed or cut mid-run; every test ends by comparing every row on the page with the store.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cells import BIDI_CONTROLS
from progress import Store, open_store
from tests.web.proxy import Proxy
from tests.web.support import (
    ROOT,
    Server,
    companies,
    server_env,
    start_batch,
    start_server,
    wait_for,
    write_sheet,
)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
WATCHDOG = 2  # seconds without event or ping before the page polls and reconnects


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        message = (
            f"Debian's Chromium is not installed at {CHROMIUM} (run scripts/ensure-browser.sh)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with quick heartbeats (the page's watchdog must not fire while idle)."""
    workdir = tmp_path_factory.mktemp("ui")
    server = start_server(
        workdir,
        f"sqlite:///{workdir / 'ui.db'}",
        args=["--ping-interval", "0.5", "--concurrency", "2"],
        env=server_env(SHEETBATCH_TEST_PHASE_SECONDS="0.12"),
    )
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output()


@pytest.fixture
def proxy(ui_server: Server) -> Iterator[Proxy]:
    p = Proxy(ui_server.url)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def ui_store(ui_server: Server) -> Iterator[Store]:
    store = open_store(ui_server.db_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def sheets(ui_server: Server, request: pytest.FixtureRequest) -> Path:
    """This test's sheets: inside the directory the server allows."""
    folder = ui_server.sheets / request.node.name[:60].replace("[", "_").replace("]", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()
    assert errors == [], errors


def shown_rows(page: Any) -> dict[str, dict[str, str]]:
    """Every row of the batch page: job id -> status, phase and error as displayed."""
    rows: dict[str, dict[str, str]] = page.eval_on_selector_all(
        "#jobs tbody tr",
        """trs => Object.fromEntries(trs.map(tr => [tr.dataset.jobId, {
            status: tr.dataset.status,
            phase: tr.children[3].textContent,
            error: tr.children[4].textContent,
            company: tr.children[1].textContent,
        }]))""",
    )
    return rows


def _no_bidi(text: str) -> str:
    return "".join(c for c in text if c not in BIDI_CONTROLS)


PAGE = 200  # rows per page of the batch page's table


def assert_page_matches_store(page: Any, store: Store, batch_id: str) -> None:
    """The rows shown are exactly the store's rows of the page shown, in the store's state."""
    number = int(page.get_attribute("#page-info", "data-page") or 1)
    jobs = store.jobs(batch_id=batch_id)[(number - 1) * PAGE : number * PAGE]
    rows = shown_rows(page)
    assert set(rows) == {j["job_id"] for j in jobs}
    for job in jobs:
        row = rows[job["job_id"]]
        assert row["status"] == job["status"], (job["row"], row, job["status"])
        # Shown without bidi controls (a label could otherwise display reversed).
        assert row["company"] == _no_bidi(job["label"])
        if job["status"] == "failed":
            assert row["error"] == _no_bidi(job["error"])
        if job["status"] == "succeeded":
            assert row["phase"] == "4/4"


def wait_finished(page: Any, status: str = "completed") -> None:
    page.wait_for_selector(f'#batch-status[data-status="{status}"]')
    if status == "completed":
        page.wait_for_selector('#overall[data-percent="100"]')
    page.wait_for_selector('#conn[data-state="done"]')


def processed(page: Any) -> int:
    return int(page.get_attribute("#summary", "data-processed") or 0)


def test_a_batch_runs_to_100_percent_with_every_row_final(
    page: Any, proxy: Proxy, ui_server: Server, ui_store: Store, sheets: Path
) -> None:
    with ui_server.client() as client:
        batch_id = start_batch(client, write_sheet(sheets / "full.csv", companies(8, fail_every=4)))
    page.goto(f"{proxy.url}/batches/{batch_id}?watchdog={WATCHDOG}")
    page.wait_for_selector('body[data-ready="1"]')
    wait_finished(page)
    assert_page_matches_store(page, ui_store, batch_id)
    summary = page.inner_text("#summary")
    assert "6 succeeded · 2 failed · 0 cancelled · 0 running · 0 queued" in summary
    assert page.inner_text("#overall .text") == "100% (8/8)"
    phases = page.eval_on_selector_all(".phase-row", "rows => rows.map(r => r.dataset.phase)")
    assert phases == ["resolve", "crawl", "extract", "score"]
    assert page.is_visible("#retry-btn") and not page.is_visible("#cancel-btn")
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(300)  # let the bar's width transition finish for the picture
    page.screenshot(path=str(ARTIFACTS / "dashboard-batch.png"), full_page=True)
    page.goto(f"{proxy.url}/?watchdog={WATCHDOG}")
    # Status and counts of a list row may refresh a moment apart: wait for both.
    row = page.wait_for_selector(
        f'#batches tr[data-batch-id="{batch_id}"][data-status="completed"]'
        ":has-text('6 succeeded · 2 failed')"
    )
    assert row is not None
    page.screenshot(path=str(ARTIFACTS / "dashboard-list.png"), full_page=True)


def test_a_stalled_then_cut_stream_recovers_with_no_stale_row(
    page: Any, proxy: Proxy, ui_server: Server, ui_store: Store, sheets: Path
) -> None:
    with ui_server.client() as client:
        batch_id = start_batch(client, write_sheet(sheets / "cut.csv", companies(24, fail_every=5)))
    page.goto(f"{proxy.url}/batches/{batch_id}?watchdog={WATCHDOG}")
    page.wait_for_selector('#conn[data-state="live"]')
    wait_for(lambda: processed(page) >= 2)
    # 1. The stream goes silent without closing (seed 002): the watchdog must notice,
    #    poll the REST snapshot and reopen the stream from its newest cursor.
    assert proxy.freeze() >= 1
    page.wait_for_selector('#conn[data-recoveries="1"]', timeout=(WATCHDOG + 3) * 1000)
    page.wait_for_selector('#conn[data-state="live"]')
    before = processed(page)
    wait_for(lambda: processed(page) > before)
    # 2. The connection is cut: EventSource reconnects with Last-Event-ID and replays.
    assert proxy.cut() >= 1
    wait_for(lambda: processed(page) > before + 2)
    assert ui_store.batch(batch_id)["status"] == "running", "the batch ended too soon to test"
    wait_finished(page)
    assert_page_matches_store(page, ui_store, batch_id)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-recovered.png"), full_page=True)


def test_a_refresh_mid_run_shows_the_right_state_at_once(
    page: Any, proxy: Proxy, ui_server: Server, ui_store: Store, sheets: Path
) -> None:
    with ui_server.client() as client:
        batch_id = start_batch(client, write_sheet(sheets / "refresh.csv", companies(14)))
    page.goto(f"{proxy.url}/batches/{batch_id}?watchdog={WATCHDOG}")
    wait_for(lambda: processed(page) >= 3)
    done_before = ui_store.batch(batch_id)["processed"]
    page.reload()
    page.wait_for_selector('body[data-ready="1"]')
    assert processed(page) >= done_before  # the snapshot, not 0/x (seed 003)
    assert int(page.get_attribute("#summary", "data-total") or 0) == 14
    assert ui_store.batch(batch_id)["status"] == "running", "the batch ended too soon to test"
    wait_finished(page)
    assert_page_matches_store(page, ui_store, batch_id)


def test_start_retry_and_cancel_from_the_page(
    page: Any, proxy: Proxy, ui_server: Server, ui_store: Store, sheets: Path
) -> None:
    sheet = write_sheet(sheets / "form.csv", companies(6, fail_every=3))
    page.goto(f"{proxy.url}/?watchdog={WATCHDOG}")
    page.wait_for_selector('body[data-sheets-loaded="1"]')
    # The form offers the files of the allowed directory, and the known pipelines only.
    offered = page.eval_on_selector_all("#sheet option", "os => os.map(o => o.value)")
    assert str(sheet) in offered
    pipelines = page.eval_on_selector_all("#pipeline option", "os => os.map(o => o.value)")
    assert "noop" in pipelines and "company" in pipelines
    # A path typed in place of a Google Sheets URL is refused by the sheet-directory rule.
    page.select_option("#sheet", "\u0000other")
    page.fill("#sheet-url", "../secret/victim.csv")
    page.click("#start-form button[type=submit]")
    # The answer arrives asynchronously: wait for the error the page shows.
    page.wait_for_selector("#start-error:has-text('sheet:')")
    assert "only from the directories the server allows" in page.inner_text("#start-error")
    page.select_option("#sheet", str(sheet))
    page.select_option("#pipeline", "tests.support.pipelines:slow")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/batches/b-*")
    batch_id = page.url.rsplit("/", 1)[1].split("?")[0]
    wait_finished(page)
    page.click("#retry-btn")
    page.wait_for_selector("#action-msg:has-text('2 rows requeued')")
    # The batch reopened and ran its failed rows again (a worker process starts for that,
    # so the rows may already be done by the time the page hears of it: the store says).
    assert wait_for(
        lambda: any(
            e["type"] == "batch_reopened"
            for e in ui_store.events_after(0, batch_id=batch_id, limit=10_000)
        )
    )
    wait_for(lambda: ui_store.batch(batch_id)["status"] != "running")
    wait_finished(page)
    assert ui_store.batch(batch_id)["counts"]["failed"] == 2
    assert_page_matches_store(page, ui_store, batch_id)
    # A long batch, cancelled from its page.
    long_sheet = write_sheet(sheets / "long.csv", companies(20))
    with ui_server.client() as client:
        long_id = start_batch(client, long_sheet)
    page.goto(f"{proxy.url}/batches/{long_id}?watchdog={WATCHDOG}")
    wait_for(lambda: processed(page) >= 1)
    page.click("#cancel-btn")
    wait_finished(page, "cancelled")
    assert ui_store.batch(long_id)["status"] == "cancelled"
    assert_page_matches_store(page, ui_store, long_id)


def test_a_large_batch_pages_its_rows_on_the_server_and_long_cells_stay_in_place(
    page: Any, proxy: Proxy, ui_server: Server, ui_store: Store, sheets: Path
) -> None:
    rows = [(f"Co {i}", f"https://ok{i}.test") for i in range(1, 1500)]
    rows.insert(7, ("\u202e" + "Very long company name " * 200, "https://long.test"))
    with ui_server.client() as client:
        batch_id = start_batch(client, write_sheet(sheets / "large.csv", rows), pipeline="noop")
    # Opened while it runs: the stream's snapshot holds 200 rows, the rest page in over
    # REST while events keep arriving; every row must end exactly as the store says.
    page.goto(f"{proxy.url}/batches/{batch_id}?watchdog={WATCHDOG}")
    # One page of rows at a time, paged on the server; events keep the page's rows live.
    page.wait_for_selector("#pager:not([hidden])")
    page.click("#next-page")
    page.wait_for_selector('#page-info[data-page="2"]')
    wait_finished(page)
    page.wait_for_selector("#rows-loading", state="hidden")
    assert page.inner_text("#page-info") == "rows 201–400 of 1500"
    assert_page_matches_store(page, ui_store, batch_id)
    assert page.inner_text("#overall .text") == "100% (1500/1500)"
    for number in range(3, 9):  # each click shows the next page (wait for it, then click)
        page.click("#next-page")
        page.wait_for_selector(f'#page-info[data-page="{number}"]')
        page.wait_for_selector("#rows-loading", state="hidden")
    assert page.get_attribute("#next-page", "disabled") is not None
    assert page.inner_text("#page-info") == "rows 1401–1500 of 1500"
    assert_page_matches_store(page, ui_store, batch_id)
    for number in range(7, 0, -1):
        page.click("#prev-page")
        page.wait_for_selector(f'#page-info[data-page="{number}"]')
        page.wait_for_selector("#rows-loading", state="hidden")
    assert page.get_attribute("#prev-page", "disabled") is not None
    assert_page_matches_store(page, ui_store, batch_id)
    layout = page.evaluate(
        """() => {
            const cell = document.querySelector('#jobs tbody tr:nth-child(8) td:nth-child(2)');
            return {table: document.querySelector('#jobs').scrollWidth,
                    page: document.documentElement.clientWidth,
                    clipped: cell.scrollWidth > cell.clientWidth,
                    title: cell.title.length};
        }"""
    )
    assert layout["table"] <= layout["page"] and layout["clipped"], layout
    assert layout["title"] > 2000  # the whole text is one hover away
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-large.png"))
