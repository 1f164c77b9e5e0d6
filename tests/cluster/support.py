"""What the distributed tests check: one terminal state per row, the sheet as the store says."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from progress import Store
from sheets_integration.row_cells import status_text
from tests.support.cli import read_csv, write_csv

TERMINAL = {"job_succeeded", "job_failed", "job_cancelled"}
PIPELINE = "tests.support.pipelines:slow"


def make_sheet(tmp_path: Path, rows: int) -> Path:
    return write_csv(
        tmp_path / "leads.csv",
        ["Company", "Website"],
        [[f"Company {i}", f"company{i}.test"] for i in range(rows)],
    )


def job_events(store: Store, batch_id: str) -> dict[str, list[dict[str, Any]]]:
    events: dict[str, list[dict[str, Any]]] = {}
    cursor = 0
    while page := store.events_after(cursor, batch_id=batch_id, limit=5000):
        for event in page:
            if event["job_id"]:
                events.setdefault(event["job_id"], []).append(event)
        cursor = page[-1]["id"]
    return events


def assert_one_terminal_state_each(store: Store, batch_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every job ended exactly once, its terminal event is its last, and the final attempt
    ran each phase once (a stale attempt's writes would add phase events)."""
    events = job_events(store, batch_id)
    assert len(events) == store.batch(batch_id)["total"]
    for job_id, evs in events.items():
        types = [e["type"] for e in evs]
        assert sum(t in TERMINAL for t in types) == 1, (job_id, types)
        assert types[-1] in TERMINAL, (job_id, types)
        starts = [i for i, t in enumerate(types) if t == "job_started"]
        final = Counter(types[starts[-1] :] if starts else [])
        if types[-1] == "job_succeeded":
            assert final["phase_started"] == 4 and final["phase_finished"] == 4, (job_id, types)
    return events


def assert_sheet_matches_store(store: Store, sheet: Path) -> None:
    rows = read_csv(sheet)
    assert rows and all(r["Job ID"] for r in rows)
    for row in rows:
        job = store.job(row["Job ID"])
        assert row["Status"] == status_text(job), (row, job["status"])
        if job["status"] == "succeeded":
            assert row["Name"] == row["Company"].upper()
