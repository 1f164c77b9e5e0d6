"""The server only touches the sheets it is meant to (issue 8, section 3): local sheets through
the API come only from the allowed directories, resolved after symlinks; a refusal is a 403
that tells nothing of the file. The CLI is not concerned."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from progress import Store, open_store
from sheetbatch.config import load_settings
from sheetbatch.web import close_app, create_app, shutdown_app
from sheetbatch.web.sheets import SheetPolicy, is_google
from tests.support.cli import sheetbatch
from tests.web.support import companies, write_sheet


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    allowed = tmp_path / "allowed"
    secret = tmp_path / "secret"
    allowed.mkdir()
    (allowed / "team").mkdir()
    secret.mkdir()
    victim = secret / "victim.csv"
    victim.write_text("Company,Website\nAcme,https://acme.test\n", encoding="utf-8")
    creds = secret / "creds.csv"
    creds.write_text("user,password\nroot,hunter2\n", encoding="utf-8")
    (allowed / "escape.csv").symlink_to(victim)
    write_sheet(allowed / "ok.csv", companies(2))
    write_sheet(allowed / "team" / "nested.csv", companies(1))
    (allowed / "notes.txt").write_text("not a sheet", encoding="utf-8")
    return {"allowed": allowed, "secret": secret, "victim": victim, "creds": creds}


def _app(store: Store, dirs: tuple[str, ...]) -> Flask:
    settings = load_settings(
        config_files=[], environ={}, overrides={"sheet_dirs": dirs, "pipeline": "noop"}
    )
    return create_app(settings, store=store)


@pytest.fixture
def api(
    tmp_path: Path, layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FlaskClient]:
    monkeypatch.chdir(layout["allowed"])
    store = open_store(f"sqlite:///{tmp_path / 'dirs.db'}")
    app = _app(store, (str(layout["allowed"]),))
    try:
        yield app.test_client()
    finally:
        shutdown_app(app, timeout=10)
        close_app(app)
        store.close()


def test_sheets_outside_the_allowed_directories_are_403_and_reveal_nothing(
    api: FlaskClient, layout: dict[str, Path]
) -> None:
    before = {p: p.read_bytes() for p in (layout["victim"], layout["creds"])}
    answers = [
        api.post("/api/batches", json={"sheet": spec})
        for spec in (
            "../secret/victim.csv",
            "../../secret/creds.csv",
            str(layout["creds"]),
            str(layout["secret"] / "does-not-exist.csv"),
            "escape.csv",  # a symlink inside the directory, to a file outside it
            str(layout["allowed"]),  # the directory itself
            f"{layout['secret']}/book.xlsx#Sheet1",
        )
    ]
    bodies = [a.get_json() for a in answers]
    assert {a.status_code for a in answers} == {403}
    assert len({b["error"] for b in bodies}) == 1  # exists or not, header or not: the same
    assert all(b["field"] == "sheet" and b["code"] == "forbidden" for b in bodies)
    message = bodies[0]["error"]
    assert "only from the directories the server allows" in message
    assert "user" not in message and "password" not in message and "victim" not in message
    assert {p: p.read_bytes() for p in before} == before  # nothing written


def test_sheets_inside_are_accepted_resolved(api: FlaskClient, layout: dict[str, Path]) -> None:
    answer = api.post("/api/batches", json={"sheet": "team/nested.csv"})
    assert answer.status_code == 202, answer.get_json()
    options = answer.get_json()["batch"]["options"]
    assert options["sheet_spec"] == str((layout["allowed"] / "team" / "nested.csv").resolve())


def test_the_start_form_lists_the_allowed_files_and_known_pipelines(
    api: FlaskClient, layout: dict[str, Path]
) -> None:
    body = api.get("/api/sheets").get_json()
    assert body["directories"] == [str(layout["allowed"].resolve())]
    names = sorted(f["name"] for f in body["files"])
    assert names == ["ok.csv", os.path.join("team", "nested.csv")]  # no symlink out, no .txt
    assert "noop" in body["pipelines"] and "company" in body["pipelines"]
    assert body["google"] == []


def test_without_sheet_dirs_only_google_sheets_are_served(
    tmp_path: Path, layout: dict[str, Path]
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'none.db'}")
    app = _app(store, ())
    try:
        answer = app.test_client().post(
            "/api/batches", json={"sheet": str(layout["allowed"] / "ok.csv")}
        )
        assert answer.status_code == 403
        assert "allows no sheet directory" in answer.get_json()["error"]
    finally:
        shutdown_app(app, timeout=5)
        close_app(app)
        store.close()


def test_the_policy_tells_google_specs_from_paths_by_their_text(layout: dict[str, Path]) -> None:
    assert is_google(
        "https://docs.google.com/spreadsheets/d/1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/edit"
    )
    assert is_google("1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/Sheet 1")
    assert not is_google("../secret/victim.csv")
    assert not is_google("companies.xlsx#Sheet1")
    policy = SheetPolicy([str(layout["allowed"])])
    assert policy.admit(str(layout["allowed"] / "ok.csv")) == str(
        (layout["allowed"] / "ok.csv").resolve()
    )


def test_the_cli_is_not_restricted(layout: dict[str, Path], tmp_path: Path) -> None:
    result = sheetbatch(
        [
            "run",
            str(layout["victim"]),
            "--pipeline",
            "noop",
            "--db",
            f"sqlite:///{tmp_path / 'c.db'}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_a_path_in_an_unknown_home_directory_is_refused_not_a_crash(tmp_path: Path) -> None:
    from sheetbatch.web.errors import ApiError
    from sheetbatch.web.sheets import SheetPolicy

    with pytest.raises(ApiError) as refused:
        SheetPolicy([str(tmp_path)]).admit("~no-such-user-here$/leads.csv")
    assert refused.value.status == 403 and refused.value.field == "sheet"
