"""`POST /api/batches` with `output_columns` and `overwrite`, and with nothing to do, through
Flask's test client on a real store (SQLite and PostgreSQL) and real CSV files."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from progress import Store
from sheetbatch.config import load_settings
from sheetbatch.web import close_app, create_app, shutdown_app
from sheetbatch.web.openapi import openapi_document
from tests.web.support import wait_for


@pytest.fixture
def app(store: Store, tmp_path: Path) -> Iterator[Flask]:
    # The test's folder is the directory the server may take local sheets from.
    settings = load_settings(
        config_files=[],
        environ={},
        overrides={"pipeline": "noop", "sheet_dirs": (str(tmp_path),)},
    )
    app = create_app(settings, store=store)
    yield app
    shutdown_app(app, timeout=10)
    close_app(app)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


def sheet(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, restval=""))


def done(store: Store, batch_id: str) -> dict[str, Any]:
    snapshot: dict[str, Any] = wait_for(
        lambda: (s := store.batch(batch_id))["status"] != "running" and s
    )
    return snapshot


def test_the_operators_column_is_refused_naming_the_field(
    api: FlaskClient, store: Store, tmp_path: Path
) -> None:
    path = sheet(tmp_path / "c.csv", ["Company", "Website", "Name"], [["Acme", "a.test", "Alice"]])
    before = path.read_bytes()
    answer = api.post("/api/batches", json={"sheet": str(path)})
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["field"] == "output_columns"
    assert "column 'Name' holds values sheetbatch did not write (row 2: 'Alice')" in body["error"]
    assert path.read_bytes() == before and store.batches() == []


def test_output_columns_and_overwrite_are_honoured(
    api: FlaskClient, store: Store, tmp_path: Path
) -> None:
    path = sheet(
        tmp_path / "c.csv",
        ["Company", "Website", "Name", "Score"],
        [["Acme", "https://acme.test", "Alice", "=2*3"]],
    )
    answer = api.post(
        "/api/batches",
        json={"sheet": str(path), "output_columns": {"Name": "Found name"}, "overwrite": ["Score"]},
    )
    assert answer.status_code == 202, answer.get_json()
    batch_id = answer.get_json()["batch_id"]
    assert done(store, batch_id)["counts"]["succeeded"] == 1
    # The sheet writer's final flush follows the last job's end: wait for it in the sheet.
    row = wait_for(lambda: (r := rows(path)[0]).get("Status") == "completed" and r)
    assert row["Name"] == "Alice" and row["Found name"] == "Acme"
    assert row["Score"].isdigit() and row["Status"] == "completed"
    assert store.batch(batch_id)["options"]["output_columns"] == {"Name": "Found name"}


def test_nothing_to_do_answers_200_and_records_no_batch(
    api: FlaskClient, store: Store, tmp_path: Path
) -> None:
    path = sheet(
        tmp_path / "c.csv",
        ["Company", "Website", "Status"],
        [["Acme", "a.test", "do not touch"], ["", "", ""]],
    )
    answer = api.post("/api/batches", json={"sheet": str(path)})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["batch_id"] is None and body["nothing_to_do"] is True
    assert body["selection"]["skipped"]["by_hand"] == {"do not touch": 1}
    assert body["selection"]["skipped"]["empty"] == 1
    assert "1 row skipped (Status set by hand: 'do not touch')" in body["message"]
    assert store.batches() == []
    post = openapi_document()["paths"]["/api/batches"]["post"]
    assert "200" in post["responses"] and "nothing_to_do" in str(post["responses"]["200"])


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"output_columns": {"Name": ""}}, "output_columns"),
        ({"output_columns": {"Name": 3}}, "output_columns"),
        ({"output_columns": ["Name=Found"]}, "output_columns"),
        ({"output_columns": {"Nmae": "Found"}}, "output_columns"),
        ({"overwrite": "Name"}, "overwrite"),
        ({"overwrite": [" "]}, "overwrite"),
    ],
)
def test_bad_column_fields_are_422_naming_them(
    api: FlaskClient, tmp_path: Path, extra: dict[str, Any], field: str
) -> None:
    path = sheet(tmp_path / "c.csv", ["Company", "Website"], [["Acme", "a.test"]])
    answer = api.post("/api/batches", json={"sheet": str(path), **extra})
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["field"] == field
