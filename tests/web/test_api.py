"""The REST API through Flask's test client, on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from progress import Store
from sheetbatch.config import load_settings
from sheetbatch.web import close_app, create_app, shutdown_app, web_context
from sheetbatch.web.openapi import openapi_document
from tests.support.factory import make_batch
from tests.web.support import SLOW_PIPELINE, companies, wait_for, write_sheet


@pytest.fixture
def app(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Flask]:
    monkeypatch.setenv("SHEETBATCH_TEST_PHASE_SECONDS", "0.01")
    # Local sheets through the API only from an allowed directory: this test's folder, which
    # is also the working directory (relative specs resolve from there, as on a server).
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(request.config.rootpath))  # the workers import tests.*
    settings = load_settings(
        config_files=[],
        environ={},
        overrides={"pipeline": SLOW_PIPELINE, "concurrency": 4, "sheet_dirs": (str(tmp_path),)},
    )
    app = create_app(settings, store=store)
    yield app
    shutdown_app(app, timeout=10)
    close_app(app)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


def error(response: Any) -> tuple[int, str | None]:
    body = response.get_json()
    assert set(body) == {"error", "code", "field"}, body
    return response.status_code, body["field"]


def test_unknown_job_is_404_and_a_queued_one_is_200(api: FlaskClient, store: Store) -> None:
    _, [job_id, *_] = make_batch(store)
    assert error(api.get("/api/progress/j-does-not-exist")) == (404, "job_id")
    answer = api.get(f"/api/progress/{job_id}")
    assert answer.status_code == 200
    job = answer.get_json()
    assert job["status"] == "queued" and job["job_id"] == job_id and job["phase"] is None
    for key in ("batch_id", "row", "fraction", "error", "results", "created", "updated"):
        assert key in job


@pytest.mark.parametrize("bad", ["x" * 65, "a.b", "a%20b", "%C3%A9"])
def test_malformed_ids_are_400_naming_the_field(api: FlaskClient, bad: str) -> None:
    assert error(api.get(f"/api/progress/{bad}")) == (400, "job_id")
    assert error(api.get(f"/api/batches/{bad}")) == (400, "batch_id")
    assert error(api.post(f"/api/batches/{bad}/cancel")) == (400, "batch_id")


def test_current_lists_running_batches_with_their_running_jobs(
    api: FlaskClient, store: Store
) -> None:
    assert api.get("/api/progress/current").get_json()["batches"] == []
    batch_id, [first, *_] = make_batch(store)
    store.start_job(first, "w", 30)
    store.phase_started(first, 1, 2, "a")
    [batch] = api.get("/api/progress/current").get_json()["batches"]
    assert batch["batch_id"] == batch_id
    assert [j["job_id"] for j in batch["running_jobs"]] == [first]
    assert batch["running_jobs"][0]["phase"] == {"index": 1, "count": 2, "name": "a"}


def test_all_filters_by_batch_and_status_and_pages_with_a_cursor(
    api: FlaskClient, store: Store
) -> None:
    batch_id, ids = make_batch(store, 7)
    other, _ = make_batch(store, 2)
    store.start_job(ids[0], "w", 30)
    store.fail_job(ids[0], phase="a", reason="boom")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"/api/progress/all?batch_id={batch_id}&limit=3" + (
            f"&cursor={cursor}" if cursor else ""
        )
        body = api.get(query).get_json()
        seen += [j["job_id"] for j in body["jobs"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 3
    failed = api.get(f"/api/progress/all?batch_id={batch_id}&status=failed").get_json()["jobs"]
    assert [j["job_id"] for j in failed] == [ids[0]]
    both = api.get("/api/progress/all?status=queued,failed&limit=500").get_json()["jobs"]
    assert len(both) == 9 and {j["batch_id"] for j in both} == {batch_id, other}
    assert error(api.get("/api/progress/all?status=done")) == (400, "status")
    assert error(api.get("/api/progress/all?limit=0")) == (400, "limit")
    assert error(api.get("/api/progress/all?limit=abc")) == (400, "limit")
    assert error(api.get("/api/progress/all?cursor=nope")) == (400, "cursor")
    assert error(api.get("/api/progress/all?batch_id=a/b")) == (400, "batch_id")


def _pages(api: FlaskClient, query: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        body = api.get(query + (f"&cursor={cursor}" if cursor else "")).get_json()
        pages.append([j["job_id"] for j in body["jobs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_paging_a_big_batch_and_the_whole_store_reads_each_job_once_in_order(
    api: FlaskClient, store: Store
) -> None:
    big, big_ids = make_batch(store, 1050)
    small, small_ids = make_batch(store, 5)
    pages = _pages(api, f"/api/progress/all?batch_id={big}&limit=100")
    assert [len(p) for p in pages] == [100] * 10 + [50]
    assert [j for p in pages for j in p] == big_ids
    # Across batches: (batch, row) order, every job once, whatever the batch ids sort as.
    everything = [j for p in _pages(api, "/api/progress/all?limit=333") for j in p]
    by_batch = {big: big_ids, small: small_ids}
    assert everything == [j for b in sorted(by_batch) for j in by_batch[b]]
    # A cursor of one batch given with another: that batch's rows after it, or none.
    first_page = api.get(f"/api/progress/all?batch_id={big}&limit=1").get_json()
    cursor = first_page["next_cursor"]
    other = api.get(f"/api/progress/all?batch_id={small}&cursor={cursor}").get_json()
    assert [j["job_id"] for j in other["jobs"]] == ([] if small < big else small_ids)


def test_batches_list_and_snapshot_with_counts_percent_eta(api: FlaskClient, store: Store) -> None:
    batch_id, ids = make_batch(store, 4)
    store.start_job(ids[0], "w", 30)
    store.succeed_job(ids[0], {})
    snap = api.get(f"/api/batches/{batch_id}").get_json()
    assert snap["counts"] == {
        "queued": 3,
        "running": 0,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 0,
    }
    assert snap["percent"] == 25.0 and snap["processed"] == 1
    assert "eta_seconds" in snap and snap["urls"]["events"] == f"/events/batches/{batch_id}"
    listed = api.get("/api/batches?status=running").get_json()["batches"]
    assert [b["batch_id"] for b in listed] == [batch_id]
    assert api.get("/api/batches?status=completed").get_json()["batches"] == []
    assert error(api.get("/api/batches?status=weird")) == (400, "status")
    assert error(api.get("/api/batches/b-unknown")) == (404, "batch_id")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 422, "sheet"),
        ({"sheet": ""}, 422, "sheet"),
        ({"sheet": 3}, 422, "sheet"),
        ({"sheet": "x.csv", "colour": "red"}, 422, "colour"),
        ({"sheet": "x.csv", "force": "yes"}, 422, "force"),
        ({"sheet": "missing.csv"}, 422, "sheet"),
        ({"sheet": "notes.txt"}, 422, "sheet"),
        ({"sheet": "x.csv", "pipeline": "os:system"}, 422, "pipeline"),
        ([1, 2], 400, "body"),
    ],
)
def test_bad_batch_requests_name_the_field(
    api: FlaskClient, body: Any, status: int, field: str
) -> None:
    assert error(api.post("/api/batches", json=body)) == (status, field)


def test_a_batch_request_must_be_json(api: FlaskClient) -> None:
    answer = api.post(
        "/api/batches", data="sheet=x.csv", content_type="application/x-www-form-urlencoded"
    )
    assert error(answer) == (415, "Content-Type")
    bad_json = api.post("/api/batches", data="{", content_type="application/json")
    assert error(bad_json) == (400, "body")


def test_start_cancel_and_retry_a_batch(api: FlaskClient, store: Store, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "run.csv", companies(6, fail_every=3))
    answer = api.post("/api/batches", json={"sheet": str(sheet)})
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    batch_id = body["batch_id"]
    assert answer.headers["Location"] == f"/api/batches/{batch_id}"
    assert body["urls"]["dashboard"] == f"/batches/{batch_id}"
    done = wait_for(lambda: (s := store.batch(batch_id))["status"] != "running" and s)
    assert done["counts"]["failed"] == 2 and done["counts"]["succeeded"] == 4
    assert done["options"]["sheet_spec"] == str(sheet)  # reopened by this spec on a retry
    flushes = re.search(
        r"^sheetbatch_sheet_flush_seconds_count (\S+)$",
        api.get("/metrics").get_data(as_text=True),
        re.MULTILINE,
    )
    assert flushes is not None and float(flushes.group(1)) > 0
    retried = api.post(f"/api/batches/{batch_id}/retry")
    assert retried.status_code == 202, retried.get_json()
    assert len(retried.get_json()["requeued"]) == 2
    again = wait_for(lambda: (s := store.batch(batch_id))["status"] != "running" and s)
    assert again["counts"]["failed"] == 2  # these rows fail every time
    cancelled = api.post(f"/api/batches/{batch_id}/cancel")
    assert cancelled.status_code == 202 and cancelled.get_json()["cancelled_queued"] == 0
    assert error(api.post("/api/batches/b-nope/retry")) == (404, "batch_id")
    assert error(api.post("/api/batches/b-nope/cancel")) == (404, "batch_id")


def test_a_retry_keeps_writing_to_the_columns_the_batch_was_started_with(
    app: Flask, api: FlaskClient, store: Store, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "mapped.csv", companies(4, fail_every=2))
    answer = api.post(
        "/api/batches", json={"sheet": str(sheet), "output_columns": {"Name": "Found name"}}
    )
    assert answer.status_code == 202, answer.get_json()
    batch_id = answer.get_json()["batch_id"]
    wait_for(lambda: store.batch(batch_id)["status"] != "running")
    wait_for(lambda: not web_context(app).runner.is_active(batch_id))  # its worker has gone
    # The retry runs in a new worker: it must resume the batch with its recorded mapping (a
    # resumed batch with other columns is refused), so the rows keep landing in "Found name".
    retried = api.post(f"/api/batches/{batch_id}/retry")
    assert retried.status_code == 202, retried.get_json()
    assert len(retried.get_json()["requeued"]) == 2
    wait_for(lambda: store.batch(batch_id)["status"] != "running")

    def final() -> list[dict[str, str]]:
        with sheet.open(newline="", encoding="utf-8") as f:
            found = list(csv.DictReader(f, restval=""))
        return found if all(r["Status"].startswith(("completed", "failed")) for r in found) else []

    rows = wait_for(final)
    assert "Name" not in rows[0]
    assert [r["Found name"] for r in rows] == ["CO 1", "", "CO 3", ""]


def test_the_same_request_again_gets_the_running_batch_and_other_columns_are_refused(
    api: FlaskClient, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers read it: rows slow enough that the batch still runs on a loaded machine.
    monkeypatch.setenv("SHEETBATCH_TEST_PHASE_SECONDS", "2")
    sheet = write_sheet(tmp_path / "busy.csv", companies(8))
    first = api.post("/api/batches", json={"sheet": str(sheet)})
    assert first.status_code == 202, first.get_json()
    batch_id = first.get_json()["batch_id"]
    wait_for(lambda: store.batch(batch_id)["counts"]["running"] >= 1)
    again = api.post("/api/batches", json={"sheet": str(sheet)})
    assert again.status_code == 202 and again.get_json()["batch_id"] == batch_id
    # Other columns are another request: its preparation refuses it while the batch runs.
    other = api.post(
        "/api/batches", json={"sheet": str(sheet), "output_columns": {"Name": "Found name"}}
    )
    assert error(other) == (409, "sheet")
    assert store.batch(batch_id)["options"]["output_columns"] == {}
    api.post(f"/api/batches/{batch_id}/cancel")
    wait_for(lambda: store.batch(batch_id)["status"] != "running")


def test_a_retry_with_no_failed_row_requeues_nothing(
    api: FlaskClient, store: Store, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "fine.csv", companies(2))
    batch_id = api.post("/api/batches", json={"sheet": str(sheet)}).get_json()["batch_id"]
    wait_for(lambda: store.batch(batch_id)["status"] != "running")
    retried = api.post(f"/api/batches/{batch_id}/retry")
    assert retried.status_code == 202, retried.get_json()
    assert retried.get_json()["requeued"] == []
    assert store.batch(batch_id)["status"] == "completed"


def test_cancel_stops_queued_rows_at_once(api: FlaskClient, store: Store) -> None:
    batch_id, _ = make_batch(store, 3)
    answer = api.post(f"/api/batches/{batch_id}/cancel")
    assert answer.status_code == 202
    body = answer.get_json()
    assert body["cancelled_queued"] == 3 and body["batch"]["status"] == "cancelled"


def test_healthz_and_metrics(api: FlaskClient, store: Store) -> None:
    make_batch(store, 2)
    health = api.get("/healthz")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = metrics.get_data(as_text=True)
    sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+Inf-]+$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    assert 'sheetbatch_jobs{status="queued"} 2' in text
    assert "sheetbatch_sse_open_streams 0" in text
    assert f"sheetbatch_events_appended_total {store.last_event_id()}" in text
    assert "sheetbatch_sheet_flush_seconds_count" in text


def test_api_errors_are_json_even_for_unknown_routes(api: FlaskClient) -> None:
    assert api.get("/api/nothing").status_code == 404
    assert api.get("/api/nothing").get_json()["code"] == "not_found"
    assert api.delete("/api/batches").status_code == 405
    assert api.get("/").status_code == 200
    assert b"sheetbatch" in api.get("/batches/b-1").data


def test_the_openapi_document_lists_every_route(app: Flask) -> None:
    doc = openapi_document()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        if not path.startswith(("/api/", "/events/", "/healthz", "/metrics")):
            continue
        if path == "/api/openapi.json":
            continue
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                served.add((path, method))
    assert documented == served
