"""Schedules through the real server: `sheetbatch serve` runs a scheduler child, ticks reach
the event streams and /metrics, and the Schedules page works in Chromium."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from progress import Store, open_store
from sheetbatch.scheduler import LEADER_LEASE
from tests.web.support import (
    ROOT,
    Server,
    companies,
    metric,
    read_events,
    server_env,
    start_batch,
    start_server,
    wait_for,
    write_sheet,
)
from tests.web.test_dashboard import browser, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def sched_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with its scheduler child (the default), quick heartbeats."""
    workdir = tmp_path_factory.mktemp("sched")
    server = start_server(
        workdir,
        f"sqlite:///{workdir / 'sched.db'}",
        args=["--ping-interval", "0.5", "--concurrency", "2"],
        env=server_env(SHEETBATCH_TEST_PHASE_SECONDS="0.05"),
    )
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def sched_store(sched_server: Server) -> Iterator[Store]:
    store = open_store(sched_server.db_url, poll_interval=0.05)
    try:
        yield store
    finally:
        store.close()


def test_serve_runs_a_scheduler_whose_ticks_stream_live_and_show_in_metrics(
    sched_server: Server, sched_store: Store
) -> None:
    sheet = write_sheet(sched_server.sheets / "live.csv", [("Acme", "https://ok1.test")])
    with sched_server.client() as client:
        wait_for(lambda: client.get("/api/schedules").json()["scheduler"]["leading"], 30)
        created = client.post("/api/schedules", json={"sheet": str(sheet), "every": "1s"})
        assert created.status_code == 201, created.text
        sid = created.json()["schedule_id"]
        cursor = str(client.get("/api/schedules").json()["cursor"])
        events = read_events(
            client,
            f"/events/schedules/{sid}",
            stop=lambda e: (
                e.event == "tick_finished"
                and json.loads(e.data)["data"]["tick"]["state"] == "succeeded"
            ),
        )
        assert events[0].event == "snapshot"
        assert json.loads(events[0].data)["schedule"]["schedule_id"] == sid
        types = [e.event for e in events[1:]]
        assert {"tick_started", "tick_launched", "tick_finished"} <= set(types)
        ids = [int(e.id) for e in events[1:]]
        assert ids == sorted(ids) and len(ids) == len(set(ids))
        everything = read_events(
            client,
            "/events/progress",
            params={"last_event_id": cursor},
            stop=lambda e: e.event == "tick_finished",
        )
        assert any(json.loads(e.data)["batch_id"] == sid for e in everything)
        assert metric(client, "sheetbatch_scheduler_leader") == 1
        assert metric(client, "sheetbatch_scheduler_leader_epoch") >= 1
        assert 0 <= metric(client, "sheetbatch_scheduler_heartbeat_age_seconds") < 30
        ticks = {
            (sample.labels["state"], sample.labels["reason"]): sample.value
            for family in text_string_to_metric_families(client.get("/metrics").text)
            if family.name == "sheetbatch_schedule_ticks"
            for sample in family.samples
        }
        assert ticks[("succeeded", "")] >= 1
        client.patch(f"/api/schedules/{sid}", json={"paused": True})


def _card(on: Any, sid: str) -> Any:
    return on.locator(f'article.schedule[data-schedule-id="{sid}"]')


def test_the_schedules_page_lists_adds_pauses_runs_and_previews(
    sched_server: Server,
    sched_store: Store,
    page: Any,  # noqa: F811
) -> None:
    sheet = write_sheet(
        sched_server.sheets / "page.csv",
        [("Acme", "https://ok1.test"), ("Beta", "https://ok2.test")],
    )
    page.goto(f"{sched_server.url}/schedules?watchdog=3")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#s-sheet", str(sheet))
    page.fill("#s-name", "page-daily")
    page.check('input[name="kind"][value="cron"]')
    page.fill("#s-cron", "0 7 * * 1-5")
    page.fill("#s-timezone", "Europe/Berlin")
    page.fill("#s-notify", "https://hooks.example.com/a, https://hooks.example.com/b")
    page.click("#schedule-form button[type=submit]")
    row = wait_for(
        lambda: next((s for s in sched_store.schedules() if s.name == "page-daily"), None)
    )
    assert row.notify == ["https://hooks.example.com/a", "https://hooks.example.com/b"]
    card = _card(page, row.schedule_id)
    card.wait_for()
    assert "Monday through Friday (Europe/Berlin)" in card.locator(".when").inner_text()
    assert "07:00:00+0" in card.locator(".next").inner_text()
    # A bad form answers inline, naming the field; nothing is created.
    page.fill("#s-sheet", str(sheet))
    page.check('input[name="kind"][value="cron"]')
    page.fill("#s-cron", "0 25 * * *")
    page.click("#schedule-form button[type=submit]")
    page.wait_for_selector("#schedule-error:not([hidden])")
    assert page.inner_text("#schedule-error").startswith("cron: ")
    assert len(sched_store.schedules()) == 2  # the live test's and this one
    # Preview: the rows a tick would take, nothing run.
    card.locator("button[data-action=preview]").click()
    card.locator(".preview").wait_for()
    assert "2 of 2 rows would be processed" in card.locator(".preview").inner_text()
    # Run now: the leader runs it as a tick; the page shows it inline, live.
    card.locator("button[data-action=run]").click()
    page.wait_for_selector(
        f'article[data-schedule-id="{row.schedule_id}"] .last[data-state="succeeded"]',
        timeout=30_000,
    )
    assert card.locator(".timeline .tk.st-succeeded").count() == 1
    # Pause: the badge says so, the store agrees.
    card.locator("button[data-action=pause]").click()
    page.wait_for_selector(f'article[data-schedule-id="{row.schedule_id}"][data-paused="true"]')
    assert sched_store.schedule(row.schedule_id).paused
    wait_for(lambda: sched_store.ticks(row.schedule_id)[0].state.value == "succeeded")
    shown = card.locator(".last").get_attribute("data-state")
    assert shown == sched_store.ticks(row.schedule_id)[0].state.value
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "schedules-page.png"), full_page=True)
    lease = sched_store.lease(LEADER_LEASE)
    assert lease is not None and lease.held(time.time())
    assert "leads (epoch" in page.inner_text("#leader")


def test_the_scheduler_child_dies_with_a_killed_server_and_none_runs_with_no_scheduler(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import os
    import signal

    workdir = tmp_path_factory.mktemp("orphan")
    db = f"sqlite:///{workdir / 'o.db'}"
    server = start_server(workdir, db)
    store = open_store(db)
    try:
        owner = wait_for(
            lambda: (lambda lease: lease.owner if lease and lease.held(time.time()) else None)(
                store.lease(LEADER_LEASE)
            ),
            30,
        )
        child = int(owner.rsplit(":", 2)[1])
        assert child != server.proc.pid
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)

        def gone() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, 30)  # no orphaned scheduler keeps leading
        quiet = start_server(workdir, db, args=["--no-scheduler"])
        try:
            with quiet.client() as client:
                assert client.get("/api/schedules").json()["scheduler"]["schedulers"] == []
        finally:
            assert quiet.stop() == 0, quiet.output()
    finally:
        server.stop()
        store.close()


def test_sigterm_stops_the_scheduler_child_and_the_workers_side_by_side(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import os
    import signal

    workdir = tmp_path_factory.mktemp("both")
    server = start_server(
        workdir,
        f"sqlite:///{workdir / 'both.db'}",
        args=["--concurrency", "2", "--shutdown-timeout", "20"],
        env=server_env(SHEETBATCH_TEST_PHASE_SECONDS="0.3"),
    )
    by_hand = write_sheet(server.sheets / "by-hand.csv", companies(12))
    ticked = write_sheet(server.sheets / "ticked.csv", companies(12, prefix="Tk"))
    store = open_store(server.db_url, poll_interval=0.05)
    try:
        with server.client() as client:
            wait_for(lambda: client.get("/api/schedules").json()["scheduler"]["leading"], 30)
            owner = client.get("/api/schedules").json()["scheduler"]["leader"]["owner"]
            child = int(owner.rsplit(":", 2)[1])
            sid = client.post("/api/schedules", json={"sheet": str(ticked), "every": "1d"}).json()[
                "schedule_id"
            ]
            assert client.post(f"/api/schedules/{sid}/trigger").status_code == 202
            batch_id = start_batch(client, by_hand)
        tick_batch = wait_for(lambda: store.ticks(sid)[0].batch_id, 30)
        for running in (batch_id, tick_batch):
            wait_for(lambda b=running: store.batch(b)["counts"]["running"] >= 1, 30)
        started = time.monotonic()
        code = server.stop(signal.SIGTERM, timeout=30)
        took = time.monotonic() - started
    finally:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)
    try:
        assert code == 0, server.output()
        # Both within the one --shutdown-timeout.
        assert took < 20, server.output()
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
        for batch, sheet in ((batch_id, by_hand), (tick_batch, ticked)):
            assert store.batch(batch)["status"] == "cancelled"
            statuses = {j["status"] for j in store.jobs(batch_id=batch)}
            assert "running" not in statuses and "queued" not in statuses
            cells = sheet.read_text(encoding="utf-8")
            assert "processing" not in cells and "queued" not in cells  # final statuses flushed
        lease = store.lease(LEADER_LEASE)
        assert lease is None or not lease.held(time.time())  # released, not left to expire
    finally:
        store.close()
