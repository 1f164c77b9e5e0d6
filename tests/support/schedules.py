"""Scheduler test support: a hand-moved clock, sheets of every backend, quick settings."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import openpyxl

from sheetbatch.config import Settings, load_settings
from sheets_integration.locate import open_sheet

QUICK = "tests.support.pipelines:formula"
SLOW = "tests.support.pipelines:slow"
HEADER = ["Company", "Website"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, wall: str, zone: str = "UTC") -> float:
        """Move to a wall-clock time of `zone` (ISO); the instant."""
        self.now = datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(zone)).timestamp()
        return self.now


def quick_settings(db: str, **overrides: Any) -> Settings:
    """Settings for tests: the given store, a one-phase pipeline, fast flushes."""
    values: dict[str, Any] = {
        "db": db,
        "pipeline": QUICK,
        "flush_interval": 0.05,
        "concurrency": 2,
        "scheduler_lease_seconds": 5.0,
        **overrides,
    }
    return load_settings(config_files=[], environ={}, overrides=values)


class OperatorSheet(Protocol):
    """A sheet a test writes and reads behind the scheduler's back, as an operator would."""

    spec: str

    def append(self, company: str) -> None: ...

    def statuses(self) -> dict[str, str]: ...

    def job_ids(self) -> dict[str, str]: ...


def _by_company(spec: str, column: str, **options: Any) -> dict[str, str]:
    sheet = open_sheet(spec, **options)
    try:
        table = sheet.read()
    finally:
        sheet.close()
    return {table.cell(i, "Company"): table.cell(i, column) for i in range(len(table.rows))}


class CsvTestSheet:
    def __init__(self, path: Path, companies: Sequence[str]) -> None:
        self.spec = str(path)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(HEADER)
            writer.writerows([c, f"https://{c.lower()}.test"] for c in companies)

    def append(self, company: str) -> None:
        with open(self.spec, "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([company, f"https://{company.lower()}.test"])

    def statuses(self) -> dict[str, str]:
        return _by_company(self.spec, "Status")

    def job_ids(self) -> dict[str, str]:
        return _by_company(self.spec, "Job ID")


class XlsxTestSheet:
    def __init__(self, path: Path, companies: Sequence[str]) -> None:
        self.spec = str(path)
        book = openpyxl.Workbook()
        ws = book.active
        assert ws is not None
        ws.append(HEADER)
        for c in companies:
            ws.append([c, f"https://{c.lower()}.test"])
        book.save(path)

    def append(self, company: str) -> None:
        book = openpyxl.load_workbook(self.spec)
        ws = book.active
        assert ws is not None
        ws.append([company, f"https://{company.lower()}.test"])
        book.save(self.spec)

    def statuses(self) -> dict[str, str]:
        return _by_company(self.spec, "Status")

    def job_ids(self) -> dict[str, str]:
        return _by_company(self.spec, "Job ID")


class GoogleTestSheet:
    def __init__(self, standin: Any, key_email: str, companies: Sequence[str]) -> None:
        self.standin = standin
        rows = [HEADER, *([c, f"https://{c.lower()}.test"] for c in companies)]
        self.key = standin.create_spreadsheet({"Leads": rows}, shared_with=[key_email])
        self.spec = f"{self.key}/Leads"

    def _rows(self) -> list[dict[str, str]]:
        header, *rows = self.standin.values(self.key)
        return [dict(zip(header, r + [""] * (len(header) - len(r)), strict=True)) for r in rows]

    def append(self, company: str) -> None:
        with self.standin.edit(self.key) as book:
            ws = book.sheet("Leads")
            row, _cols = ws.used_extent()
            ws.set(row, 0, company)
            ws.set(row, 1, f"https://{company.lower()}.test")

    def statuses(self) -> dict[str, str]:
        return {r["Company"]: r.get("Status", "") for r in self._rows()}

    def job_ids(self) -> dict[str, str]:
        return {r["Company"]: r.get("Job ID", "") for r in self._rows()}
