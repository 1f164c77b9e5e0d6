"""The schedule operations match the OpenAPI document: schemathesis drives each with
generated input (valid and invalid) and checks every answer against the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema

from progress import open_store
from sheetbatch.config import load_settings
from sheetbatch.schedules import ScheduleInput, add_schedule
from sheetbatch.web import close_app, create_app, shutdown_app
from tests.web.test_openapi import CHECKS


@pytest.fixture
def schedule_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenApiSchema]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leads.csv").write_text("Company,Website\nAcme,https://acme.test\n")
    store = open_store(f"sqlite:///{tmp_path / 'schema.db'}")
    config = load_settings(
        config_files=[],
        environ={},
        overrides={"sheets_api_url": "http://127.0.0.1:9/", "sheet_dirs": (str(tmp_path),)},
    )
    add_schedule(store, config, ScheduleInput(sheet="leads.csv", every="1h", name="hourly"))
    app: Flask = create_app(config, store=store)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    schema = schema.include(path_regex="^/api/schedules")
    try:
        yield schema
    finally:
        shutdown_app(app, timeout=5)
        close_app(app)
        store.close()


def test_every_schedule_answer_conforms_to_the_document(schedule_schema: OpenApiSchema) -> None:
    operations = [result.ok() for result in schedule_schema.get_all_operations()]
    assert len(operations) == 8
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=20,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def conforms(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=CHECKS)

            try:
                conforms()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label
