"""The terminal view at 80 columns: no progress line wraps mid-phrase, the counts never claim
rows were done that were cancelled, and "1 row" is singular."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from progress import Store, open_store
from progress.batch_writes import NewJob
from sheetbatch.console import BatchView, fit, summary_line


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as s:
        yield s


def batch(store: Store, n: int, *, running: int = 0, cancelled: bool = False) -> str:
    jobs = [NewJob(row=i + 2, inputs={}, label=f"Company {i} GmbH & Co. KG") for i in range(n)]
    batch_id = store.create_batch(sheet="s.csv", pipeline="noop", phases=["a", "b"], jobs=jobs)
    for job in jobs[:running]:
        store.start_job(job.job_id, "w", 30)
        store.phase_started(job.job_id, 1, 2, "a", owner="w")
    if cancelled:
        store.cancel_batch(batch_id)
    return batch_id


def test_the_live_view_fits_80_columns_without_wrapping(store: Store) -> None:
    batch_id = batch(store, 12_000, running=8)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    view = BatchView(store, batch_id, console)
    view._update()
    console.print(view.progress)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 80, lines
    assert re.search(r"0/12000 +✓ 0  ✗ 0  ▶ 8  … 11992 +ETA --:--", lines[0]), lines


def test_plain_lines_break_only_between_phrases() -> None:
    phrases = ["999 of 100000 rows done (0%)", "succeeded 990", "failed 9", "running 512"]
    phrases += ["queued 99000", "cancelled 488", "ETA 123:45"]
    lines = fit(phrases, 80)
    assert all(len(line) <= 80 for line in lines)
    assert " · ".join(line.strip() for line in lines) == " · ".join(phrases)
    assert [p for line in lines for p in line.strip().split(" · ")] == phrases
    assert fit(["a", "b"], 80, lead="batch b-1:") == ["batch b-1: a · b"]


def test_a_cancelled_batch_is_not_called_done(store: Store) -> None:
    batch_id = batch(store, 200, cancelled=True)
    line = summary_line(store.batch(batch_id))
    assert line.startswith("0 of 200 rows done (0%)") and "cancelled 200" in line
    assert "100%" not in line
    one = summary_line(store.batch(batch(store, 1)))
    assert one.startswith("0 of 1 row done (0%)")
