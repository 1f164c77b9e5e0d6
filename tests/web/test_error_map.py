"""The app's one error map: every library exception a view lets through answers with its
status, code and the request field at fault - through real routes, on a real store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from pipeline.errors import PipelineNotFound
from progress import Store
from progress.errors import StoreUnavailable, UnknownBatch, UnknownJob, UnknownSchedule
from sheetbatch.config import load_settings
from sheetbatch.errors import Refused, RunnerClosed
from sheetbatch.schedules import ScheduleError
from sheetbatch.web import close_app, create_app, shutdown_app, web_context
from sheetbatch.web.error_map import ERROR_MAP
from sheets_integration.errors import (
    BadColumnMapping,
    BatchBusy,
    ForeignValues,
    MergedTarget,
    SheetError,
    SheetNotFound,
)
from tests.web.support import SLOW_PIPELINE, companies, wait_for, write_sheet

# name -> (what the view raises, the answer's status, code and field)
RAISED: dict[str, tuple[Callable[[], Exception], int, str, str | None]] = {
    "unknown_job": (lambda: UnknownJob("j-x"), 404, "not_found", "job_id"),
    "unknown_batch": (lambda: UnknownBatch("b-x"), 404, "not_found", "batch_id"),
    "unknown_schedule": (lambda: UnknownSchedule("s-x"), 404, "not_found", "schedule_id"),
    "closed": (lambda: RunnerClosed("shutting down"), 503, "unavailable", None),
    "store_down": (lambda: StoreUnavailable("db gone"), 503, "unavailable", None),
    "busy": (lambda: BatchBusy("run elsewhere"), 409, "conflict", "sheet"),
    "mapping": (lambda: BadColumnMapping("no such output"), 422, "invalid", "output_columns"),
    "foreign": (
        lambda: ForeignValues("s.csv", "Email", "email", 3, "kept@x"),
        422,
        "invalid",
        "output_columns",
    ),
    "merged": (
        lambda: MergedTarget("s.csv", "C3", "C3:D3", "email", 3),
        422,
        "invalid",
        "output_columns",
    ),
    "sheet_subclass": (lambda: SheetNotFound("s.csv"), 422, "invalid", "sheet"),
    "sheet": (lambda: SheetError("bad sheet"), 422, "invalid", "sheet"),
    "pipeline": (lambda: PipelineNotFound("nope"), 422, "invalid", "pipeline"),
    "schedule": (lambda: ScheduleError("bad cron", "cron"), 422, "invalid", "cron"),
    "refused": (lambda: Refused("bad option"), 422, "invalid", "sheet"),
}


@pytest.fixture
def app(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Flask]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(request.config.rootpath))  # the workers import tests.*
    monkeypatch.setenv("SHEETBATCH_TEST_PHASE_SECONDS", "0.01")
    settings = load_settings(
        config_files=[],
        environ={},
        overrides={"pipeline": SLOW_PIPELINE, "sheet_dirs": (str(tmp_path),)},
    )
    app = create_app(settings, store=store)
    raising = Blueprint("raising", __name__)

    @raising.get("/api/raise/<name>")
    def raise_it(name: str) -> str:
        raise RAISED[name][0]()

    @raising.get("/api/batches/<batch_id>/raise/<name>")
    def raise_on_batch(batch_id: str, name: str) -> str:
        raise RAISED[name][0]()

    app.register_blueprint(raising)
    yield app
    shutdown_app(app, timeout=10)
    close_app(app)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


def test_the_map_covers_every_mapped_exception() -> None:
    raised = {type(make()) for make, *_ in RAISED.values()}
    assert set(ERROR_MAP) <= {k for t in raised for k in t.__mro__}


@pytest.mark.parametrize("name", list(RAISED))
def test_each_exception_answers_as_the_map_says(api: FlaskClient, name: str) -> None:
    make, status, code, field = RAISED[name]
    answer = api.get(f"/api/raise/{name}")
    assert answer.status_code == status
    assert answer.get_json() == {"error": str(make()), "code": code, "field": field}


def test_on_a_recorded_batch_the_sheet_at_fault_is_the_batchs(api: FlaskClient) -> None:
    answer = api.get("/api/batches/b-1/raise/sheet")
    body = answer.get_json()
    assert answer.status_code == 422 and body["field"] == "batch_id"
    assert body["error"] == "cannot run the batch's sheet again: bad sheet"
    busy = api.get("/api/batches/b-1/raise/busy")
    assert busy.status_code == 409 and busy.get_json()["field"] == "batch_id"


def test_a_bug_is_still_a_500(api: FlaskClient, app: Flask) -> None:
    @app.get("/api/raise-bug")
    def bug() -> str:
        raise ValueError("a bug, not bad input")

    answer = api.get("/api/raise-bug")
    assert answer.status_code == 500 and answer.get_json()["code"] == "internal"


def test_a_retry_whose_sheet_is_gone_names_the_batch(
    api: FlaskClient, app: Flask, store: Store, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "gone.csv", companies(2, fail_every=2))
    started = api.post("/api/batches", json={"sheet": str(sheet)})
    assert started.status_code == 202, started.get_json()
    batch_id = started.get_json()["batch_id"]
    wait_for(lambda: store.batch(batch_id)["status"] != "running")
    wait_for(lambda: not web_context(app).runner.active())  # its worker is gone too
    sheet.unlink()
    answer = api.post(f"/api/batches/{batch_id}/retry")
    body = answer.get_json()
    assert answer.status_code == 422 and body["field"] == "batch_id", body
    assert body["error"].startswith("cannot run the batch's sheet again: ")
    assert store.batch(batch_id)["counts"]["failed"] == 1  # nothing was requeued
