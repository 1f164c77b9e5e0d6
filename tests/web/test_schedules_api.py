"""`/api/schedules`: the same functions as the CLI, answers that name the field at fault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from progress import Store
from sheetbatch.config import load_settings
from sheetbatch.schedules import ScheduleInput, add_schedule
from sheetbatch.web import close_app, create_app, shutdown_app


@pytest.fixture
def api(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    # The sheets live in the directory the server may take local sheets from.
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    (sheets / "leads.csv").write_text("Company,Website\nAcme,https://acme.test\nBeta,b.test\n")
    monkeypatch.chdir(sheets)
    settings = load_settings(config_files=[], environ={}, overrides={"sheet_dirs": (str(sheets),)})
    app: Flask = create_app(settings, store=store)
    yield app.test_client()
    shutdown_app(app, timeout=5)
    close_app(app)


def error(response: Any) -> tuple[int, str | None]:
    body = response.get_json()
    assert set(body) == {"error", "code", "field"}, body
    return response.status_code, body["field"]


def test_create_list_show_change_and_delete_a_schedule(api: FlaskClient) -> None:
    answer = api.post(
        "/api/schedules",
        json={
            "sheet": "leads.csv",
            "cron": "0 7 * * 1-5",
            "timezone": "Europe/Berlin",
            "name": "mornings",
        },
    )
    assert answer.status_code == 201, answer.get_json()
    created = answer.get_json()
    sid = created["schedule_id"]
    assert answer.headers["Location"] == f"/api/schedules/{sid}"
    assert created["description"] == "At 07:00 AM, Monday through Friday (Europe/Berlin)"
    assert len(created["next_fire_times"]) == 5
    assert all(
        t[-6:] in ("+01:00", "+02:00") and "T07:00:00" in t for t in created["next_fire_times"]
    )
    listed = api.get("/api/schedules").get_json()
    assert [s["schedule_id"] for s in listed["schedules"]] == [sid]
    assert listed["cursor"] >= created["last_event_id"]
    assert listed["scheduler"]["leading"] is False
    changed = api.patch(
        f"/api/schedules/{sid}", json={"every": "15m", "cron": None, "timezone": None}
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["trigger"] == {"kind": "interval", "seconds": 900, "anchor": 0.0}
    paused = api.patch(f"/api/schedules/{sid}", json={"paused": True}).get_json()
    assert paused["paused"] is True and paused["paused_reason"] == "paused by operator"
    resumed = api.patch(f"/api/schedules/{sid}", json={"paused": False}).get_json()
    assert resumed["paused"] is False
    assert api.delete(f"/api/schedules/{sid}").status_code == 204
    assert error(api.get(f"/api/schedules/{sid}")) == (404, "schedule_id")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sheet": "leads.csv", "every": "5 minutes"}, "every"),
        ({"sheet": "leads.csv", "cron": "0 25 * * *"}, "cron"),
        ({"sheet": "leads.csv", "cron": "0 7 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"sheet": "leads.csv", "every": "1h", "cron": "0 7 * * *"}, "every"),
        ({"sheet": "missing.csv", "every": "1h"}, "sheet"),
        ({"sheet": "leads.csv", "every": "1h", "overlap": "sometimes"}, "overlap"),
        ({"sheet": "leads.csv", "every": "1h", "pipeline": "os:system"}, "pipeline"),
        ({"sheet": "leads.csv", "every": "1h", "colour": "blue"}, "colour"),
        ({"every": "1h"}, "sheet"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_creates_nothing(
    api: FlaskClient, body: dict[str, Any], field: str
) -> None:
    assert error(api.post("/api/schedules", json=body)) == (422, field)
    assert api.get("/api/schedules").get_json()["schedules"] == []


def test_trigger_queues_a_tick_for_the_leader_and_ticks_lists_it(api: FlaskClient) -> None:
    sid = api.post("/api/schedules", json={"sheet": "leads.csv", "every": "1d"}).get_json()[
        "schedule_id"
    ]
    answer = api.post(f"/api/schedules/{sid}/trigger")
    assert answer.status_code == 202
    body = answer.get_json()
    assert body["tick"]["state"] == "queued" and body["tick"]["manual"] is True
    assert body["scheduler_running"] is False
    again = api.post(f"/api/schedules/{sid}/trigger").get_json()
    assert again["tick"]["tick_id"] == body["tick"]["tick_id"]  # one waiting run at most
    ticks = api.get(f"/api/schedules/{sid}/ticks").get_json()["ticks"]
    assert [t["tick_id"] for t in ticks] == [body["tick"]["tick_id"]]
    assert error(api.get(f"/api/schedules/{sid}/ticks?limit=0")) == (400, "limit")


def test_preview_shows_the_rows_a_tick_would_take_and_runs_nothing(
    api: FlaskClient, store: Store
) -> None:
    sid = api.post("/api/schedules", json={"sheet": "leads.csv", "every": "1d"}).get_json()[
        "schedule_id"
    ]
    found = api.get(f"/api/schedules/{sid}/preview").get_json()
    assert found["selected"] == 2 and [r["row"] for r in found["rows"]] == [2, 3]
    assert [r["label"] for r in found["rows"]] == ["Acme", "Beta"]
    assert store.batches() == [] and store.ticks(sid) == []
    assert Path("leads.csv").read_text().startswith("Company,Website\n")


def test_a_local_sheet_outside_the_sheet_dirs_is_a_403_that_tells_nothing_of_it(
    api: FlaskClient, store: Store, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("Company,Website\nHidden,https://hidden.test\n")
    for sheet in (str(secret), "../secret.csv", "../missing.csv"):
        answer = api.post("/api/schedules", json={"sheet": sheet, "every": "1h"})
        assert error(answer) == (403, "sheet")
        assert "secret" not in answer.get_json()["error"]
    assert api.get("/api/schedules").get_json()["schedules"] == []
    sid = api.post("/api/schedules", json={"sheet": "leads.csv", "every": "1h"}).get_json()[
        "schedule_id"
    ]
    # What the scheduler opens is what was checked: the resolved path.
    assert store.schedule(sid).sheet == str((tmp_path / "sheets" / "leads.csv").resolve())
    assert error(api.patch(f"/api/schedules/{sid}", json={"sheet": str(secret)})) == (403, "sheet")
    assert store.schedule(sid).sheet.endswith("leads.csv")


def test_a_cli_schedule_outside_the_sheet_dirs_is_neither_previewed_nor_triggered(
    api: FlaskClient, store: Store, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("Company,Website\nHidden,https://hidden.test\n")
    settings = load_settings(config_files=[], environ={})
    row = add_schedule(store, settings, ScheduleInput(sheet=str(secret), every="1h"))
    assert error(api.get(f"/api/schedules/{row.schedule_id}/preview")) == (403, "sheet")
    assert error(api.post(f"/api/schedules/{row.schedule_id}/trigger")) == (403, "sheet")
    assert store.ticks(row.schedule_id) == []
    # It is still listed, and can be paused.
    assert api.get(f"/api/schedules/{row.schedule_id}").status_code == 200
    paused = api.patch(f"/api/schedules/{row.schedule_id}", json={"paused": True})
    assert paused.status_code == 200 and paused.get_json()["paused"] is True
