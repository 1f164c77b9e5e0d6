"""The OpenAPI document matches the API: schemathesis drives every REST operation with
generated input (valid and invalid) and checks every answer against the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from progress import open_store
from progress.batch_writes import NewJob
from sheetbatch.config import load_settings
from sheetbatch.web import close_app, create_app, shutdown_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def api_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenApiSchema]:
    # Generated sheet specs are resolved in an empty folder, and any Google access would go
    # to a closed loopback port: fuzzing never reaches a real file or another machine.
    monkeypatch.chdir(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'schema.db'}")
    jobs = [NewJob(row=i + 2, inputs={"Company": f"c{i}"}, label=f"c{i}") for i in range(3)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="noop", phases=["a"], jobs=jobs)
    store.start_job(jobs[0].job_id, "w", 30)
    store.fail_job(jobs[0].job_id, phase="a", reason="boom")
    config = load_settings(
        config_files=[], environ={}, overrides={"sheets_api_url": "http://127.0.0.1:9/"}
    )
    app: Flask = create_app(config, store=store)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # Streams never end by themselves; their contract is tested with a real client.
    schema = schema.exclude(path_regex="^/events/")
    schema = schema.exclude(path_regex="^/api/schedules")  # test_schedules_openapi.py
    assert batch_id
    try:
        yield schema
    finally:
        shutdown_app(app, timeout=5)
        close_app(app)
        store.close()


def test_every_answer_conforms_to_the_document(api_schema: OpenApiSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 12
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=25,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def conforms(case: schemathesis.Case) -> None:
                # /api/progress/all and /current are operations of their own, documented
                # as such: a "job id" spelled like them reaches them, by design.
                assume((case.path_parameters or {}).get("job_id") not in ("all", "current"))
                case.call_and_validate(checks=CHECKS)

            try:
                conforms()
            except Unsatisfiable:
                # No input of this operation can be made invalid (it takes no parameters).
                assert mode is GenerationMode.NEGATIVE, operation.label
