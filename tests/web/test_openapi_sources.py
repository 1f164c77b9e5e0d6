"""The OpenAPI document takes its enums and id rules from the code: a status added to
`JobStatus` or a changed id rule changes what clients are told, with no copy to forget."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from progress.batch_writes import new_batch_id, new_job_id
from progress.schedule_model import Catchup, Overlap, TickReason, TickState, tick_batch_id
from progress.schedules import new_schedule_id
from progress.schema import ID_PATTERN
from progress.status import BatchStatus, JobStatus
from progress.ticks import new_tick_id
from sheetbatch.web.openapi import openapi_document


def _values(enum: Any) -> list[str]:
    return [member.value for member in enum]


def _parameters(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                yield from operation.get("parameters", [])


def test_the_documents_statuses_are_the_enums() -> None:
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["Job"]["properties"]["status"]["enum"] == _values(JobStatus)
    assert schemas["Batch"]["properties"]["status"]["enum"] == _values(BatchStatus)
    assert list(schemas["Batch"]["properties"]["counts"]["properties"]) == _values(JobStatus)
    tick = schemas["Tick"]["properties"]
    assert tick["state"]["enum"] == _values(TickState)
    assert tick["reason"]["enum"] == _values(TickReason)
    for schema in ("Schedule", "ScheduleRequest"):
        properties = schemas[schema]["properties"]
        assert properties["overlap"]["enum"] == _values(Overlap)
        assert properties["catchup"]["enum"] == _values(Catchup)


def test_the_status_filter_accepts_exactly_the_job_statuses() -> None:
    document = openapi_document()
    [status] = [
        p
        for p in document["paths"]["/api/progress/all"]["get"]["parameters"]
        if p["name"] == "status"
    ]
    pattern = re.compile(status["schema"]["pattern"])
    assert pattern.fullmatch(",".join(_values(JobStatus)))
    assert not pattern.fullmatch("completed")  # a batch status, not a job's


def test_every_id_parameter_uses_the_stores_id_rule() -> None:
    names = {"job_id", "batch_id", "schedule_id", "tick_id"}
    id_params = [p for p in _parameters(openapi_document()) if p["name"] in names]
    assert {p["name"] for p in id_params} >= {"job_id", "batch_id", "schedule_id"}
    assert {p["schema"]["pattern"] for p in id_params} == {ID_PATTERN}
    # ... and that rule admits every id the store makes.
    tick_id = new_tick_id()
    made = [new_job_id(), new_batch_id(), new_schedule_id(), tick_id, tick_batch_id(tick_id)]
    assert all(re.fullmatch(ID_PATTERN, made_id) for made_id in made), made
