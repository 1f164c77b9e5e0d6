"""/metrics by prometheus_client: the standard exposition (process figures, histograms with
their `_bucket`/`_sum`/`_count`), one registry per app, and a scrape that reads the store with
aggregate queries whatever the number of batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from progress import Store
from progress.batch_writes import NewJob
from sheetbatch.config import load_settings
from sheetbatch.web import close_app, create_app, shutdown_app, web_context
from sheetbatch.web.metrics import Metrics, StoreFigures
from sheets_integration.writer import FlushReport


@pytest.fixture
def app(store: Store) -> Iterator[Flask]:
    app = create_app(load_settings(config_files=[], environ={}), store=store)
    yield app
    shutdown_app(app, timeout=10)
    close_app(app)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return samples(answer.get_data(as_text=True))


def batch_of(store: Store, n: int) -> str:
    jobs = [NewJob(row=i + 2, inputs={"Company": f"c{i}"}) for i in range(n)]
    return store.create_batch(sheet="s.csv", pipeline="test", phases=["a"], jobs=jobs)


def test_the_exposition_is_standard_with_process_figures_and_a_histogram(app: Flask) -> None:
    metrics = web_context(app).metrics
    metrics.observe_flush(FlushReport(rows=3, seconds=0.2))
    metrics.observe_flush(FlushReport(rows=4, seconds=2.0))
    got = scrape(app)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
        assert (name, ()) in got, name
    assert got[("sheetbatch_sheet_flush_seconds_bucket", (("le", "0.1"),))] == 0
    assert got[("sheetbatch_sheet_flush_seconds_bucket", (("le", "0.25"),))] == 1
    assert got[("sheetbatch_sheet_flush_seconds_bucket", (("le", "2.5"),))] == 2
    assert got[("sheetbatch_sheet_flush_seconds_bucket", (("le", "+Inf"),))] == 2
    assert got[("sheetbatch_sheet_flush_seconds_count", ())] == 2
    assert got[("sheetbatch_sheet_flush_seconds_sum", ())] == pytest.approx(2.2)
    assert got[("sheetbatch_sheet_rows_written_total", ())] == 7


def test_every_metric_name_of_before_is_still_there(app: Flask) -> None:
    names = {name for name, _labels in scrape(app)}
    assert {
        "sheetbatch_jobs",
        "sheetbatch_batches",
        "sheetbatch_events_appended_total",
        "sheetbatch_sse_open_streams",
        "sheetbatch_sse_streams_opened_total",
        "sheetbatch_sse_events_sent_total",
        "sheetbatch_batches_running_here",
        "sheetbatch_sheet_flush_seconds_bucket",
        "sheetbatch_sheet_flush_seconds_sum",
        "sheetbatch_sheet_flush_seconds_count",
        "sheetbatch_http_connections",
        "sheetbatch_http_connections_refused_total",
        "sheetbatch_sheet_rows_written_total",
        "sheetbatch_schedule_ticks",
        "sheetbatch_schedules",
        "sheetbatch_scheduler_leader",
        "sheetbatch_scheduler_leader_epoch",
        "sheetbatch_scheduler_heartbeat_age_seconds",
        "sheetbatch_schedulers",
    } <= names


def test_each_app_has_its_own_registry(store: Store) -> None:
    settings = load_settings(config_files=[], environ={})
    one, other = create_app(settings, store=store), create_app(settings, store=store)
    try:
        web_context(one).metrics.events_sent(5)
        assert scrape(one)[("sheetbatch_sse_events_sent_total", ())] == 5
        assert scrape(other)[("sheetbatch_sse_events_sent_total", ())] == 0
        # Nothing of ours in prometheus_client's process-wide registry.
        global_names = {
            s.name for family in prometheus_client.REGISTRY.collect() for s in family.samples
        }
        assert not any(name.startswith("sheetbatch_") for name in global_names)
    finally:
        for app in (one, other):
            shutdown_app(app, timeout=10)
            close_app(app)
    assert Metrics().registry is not Metrics().registry


def test_jobs_and_batches_by_status_match_the_snapshots(app: Flask, store: Store) -> None:
    first, second = batch_of(store, 3), batch_of(store, 2)
    job = store.claim_next(first, "w", 30)
    assert job is not None
    store.succeed_job(job["job_id"], {}, owner="w")
    store.cancel_batch(second)
    got = scrape(app)
    jobs = {s: 0 for s in ("queued", "running", "succeeded", "failed", "cancelled")}
    batches = {s: 0 for s in ("running", "completed", "cancelled")}
    for snapshot in store.batches():
        batches[snapshot["status"]] += 1
        for status, n in snapshot["counts"].items():
            jobs[status] += n
    assert {s: got[("sheetbatch_jobs", (("status", s),))] for s in jobs} == jobs
    assert {s: got[("sheetbatch_batches", (("status", s),))] for s in batches} == batches
    assert jobs["succeeded"] == 1 and jobs["cancelled"] == 2 and jobs["queued"] == 2
    assert got[("sheetbatch_events_appended_total", ())] == store.last_event_id()


def test_a_scrape_reads_the_store_in_a_fixed_number_of_queries(store: Store) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    batch_of(store, 1)
    event.listen(store.engine, "before_cursor_execute", record)
    try:
        StoreFigures.read(store)
        few = list(statements)
        for _ in range(40):
            batch_of(store, 3)
        statements.clear()
        figures = StoreFigures.read(store)
        many = list(statements)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert figures.counts.batches["running"] == 41 and figures.counts.jobs["queued"] == 121
    # However many batches: the same statements, and batches are only ever aggregated.
    assert len(many) == len(few) <= 6
    reads_of_batches = [s for s in many if "sb_batches" in s]
    assert reads_of_batches and all("GROUP BY" in s.upper() for s in reads_of_batches)
