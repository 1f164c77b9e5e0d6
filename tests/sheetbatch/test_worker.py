"""The worker protocol: a preparation's refusal crosses to the server as the same exception."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import PipelineError
from progress.errors import StoreUnavailable
from sheetbatch.config import Settings
from sheetbatch.worker import EXIT_REFUSED, refusal, refused_error, run_work, work_request
from sheets_integration.errors import (
    BadColumnMapping,
    BatchBusy,
    ForeignValues,
    MergedTarget,
    SheetError,
    SheetNotFound,
)
from sheets_integration.selection import NothingToDo, Selection, Skipped


def crossed(exc: BaseException) -> Exception:
    answer = refusal(exc)
    assert answer is not None
    # As it travels: one JSON line on the worker's stdout.
    return refused_error(json.loads(json.dumps({"event": "refused", **answer})))


def test_nothing_to_do_crosses_with_what_became_of_every_row() -> None:
    selection = Selection(
        written_from_store=1,
        skipped=Skipped(empty=2, completed=3, by_hand=Counter({"do not touch": 1, "later": 2})),
    )
    sent = NothingToDo("leads.csv", selection)
    back = crossed(sent)
    assert isinstance(back, NothingToDo)
    assert str(back) == str(sent) and back.sheet == "leads.csv"
    assert back.selection.as_json() == selection.as_json()


@pytest.mark.parametrize(
    "sent",
    [
        ForeignValues("c.csv", "Name", "Name", 2, "Alice", "the column is the operator's"),
        MergedTarget("c.xlsx", "D3", "C3:E3", "Status", 3),
    ],
)
def test_the_refusals_of_the_runs_columns_cross_as_themselves(sent: SheetError) -> None:
    back = crossed(sent)
    assert type(back) is type(sent) and str(back) == str(sent)
    assert back.__dict__ == sent.__dict__


@pytest.mark.parametrize(
    ("sent", "kind"),
    [
        (BadColumnMapping("Nmae is no output of the pipeline"), BadColumnMapping),
        (BatchBusy("c.csv: batch b-1 is being run by h:1:x right now"), BatchBusy),
        (SheetNotFound("gone.csv"), SheetError),
        (PipelineError("unknown pipeline 'nope'"), PipelineError),
        (StoreUnavailable("database is locked"), StoreUnavailable),
        (ValueError("bad option"), ValueError),
    ],
)
def test_other_refusals_cross_as_their_kind_with_their_message(
    sent: Exception, kind: type[Exception]
) -> None:
    back = crossed(sent)
    assert isinstance(back, kind) and str(back) == str(sent)


def test_a_crash_is_no_refusal() -> None:
    assert refusal(RuntimeError("boom")) is None


def test_a_worker_never_creates_a_store_that_has_gone_missing(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "progress.db"
    (tmp_path / "gone").mkdir()
    said: list[dict[str, Any]] = []
    request = work_request(Settings(), f"sqlite:///{missing}", str(tmp_path / "c.csv"))
    assert run_work(request, lambda **message: said.append(message)) == EXIT_REFUSED
    assert said == [
        {"event": "refused", "kind": "unavailable", "message": said[0]["message"]},
    ]
    assert "no progress store" in said[0]["message"]
    assert not missing.exists()
