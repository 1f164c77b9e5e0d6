"""The `Sheet` contract, once for every backend: a CSV file, an .xlsx workbook and a Google
spreadsheet on the stand-in. Rows are found by Job ID however the operator sorted, inserted,
deleted or edited rows meanwhile; job ids never land on rows that moved.

Backend-specific behaviour (dialects, styles, quotas, literal writes) stays in
test_csv_sheet.py, test_xlsx_sheet.py and test_google_sheet.py.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet as XlsxWorksheet

from gsheets_standin import StandIn
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.google_sheet import GoogleSheet
from sheets_integration.sheet import Sheet, Table
from sheets_integration.xlsx_sheet import XlsxSheet
from tests.support.google import *  # noqa: F403

COMPANIES = [
    ["URL", "Name", "Notes"],
    ["https://a.example", "Alpha", ""],
    ["https://b.example", "Beta", "call back"],
    ["https://c.example", "Gamma", ""],
]
Rows = list[list[str]]


@dataclass
class Backend:
    """A sheet of one backend and the operator's hands on its storage (not through it)."""

    sheet: Sheet
    values: Callable[[], Rows]  # every row as text, header first, trailing empties trimmed
    replace: Callable[[Rows], None]  # the operator saves these rows instead (header first)

    def rows(self) -> dict[str, dict[str, str]]:
        """The data rows by their Name cell."""
        header, *rows = self.values()
        out = {}
        for row in rows:
            if row:
                cells = dict(zip(header, row, strict=False))
                out[cells.get("Name", "")] = {c: cells.get(c, "") for c in header}
        return out

    def column(self, name: str) -> list[str]:
        table = self.sheet.read()
        return [table.cell(i, name) for i in range(len(table.rows))]


def _trim(rows: Sequence[Sequence[Any]]) -> Rows:
    out = [["" if v is None else str(v) for v in row] for row in rows]
    for row in out:
        while row and row[-1] == "":
            row.pop()
    while out and not out[-1]:
        out.pop()
    return out


def _csv(tmp_path: Path, rows: Rows) -> Backend:
    path = tmp_path / "companies.csv"

    def replace(new: Rows) -> None:
        with path.open("w", newline="", encoding="utf-8") as stream:
            csv.writer(stream, lineterminator="\r\n").writerows(new)

    def values() -> Rows:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            return _trim(list(csv.reader(stream)))

    replace(rows)
    return Backend(CsvSheet(path), values, replace)


def _xlsx(tmp_path: Path, rows: Rows) -> Backend:
    path = tmp_path / "companies.xlsx"

    def replace(new: Rows) -> None:
        book = openpyxl.Workbook()
        ws = book.active
        assert isinstance(ws, XlsxWorksheet)
        ws.title = "Companies"
        for row in new:
            ws.append([v if v != "" else None for v in row])
        book.save(path)

    def values() -> Rows:
        ws = openpyxl.load_workbook(path)["Companies"]
        return _trim([list(r) for r in ws.iter_rows(values_only=True)])

    replace(rows)
    return Backend(XlsxSheet(path), values, replace)


def _google(make: Callable[..., GoogleSheet], standin: StandIn, rows: Rows) -> Backend:
    sheet = make(rows)

    def replace(new: Rows) -> None:
        with standin.edit(sheet.key) as book:
            ws = book.sheet()
            ws.rows = [list(row) for row in new]

    return Backend(sheet, lambda: _trim(standin.values(sheet.key)), replace)


@pytest.fixture(params=["csv", "xlsx", "google"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Rows], Backend]:
    """`make(rows) -> Backend` on the parametrised backend."""
    if request.param == "csv":
        return lambda rows: _csv(tmp_path, rows)
    if request.param == "xlsx":
        return lambda rows: _xlsx(tmp_path, rows)
    google = request.getfixturevalue("google_sheet")
    standin = request.getfixturevalue("standin")
    return lambda rows: _google(google, standin, rows)


@pytest.fixture
def companies(make: Callable[[Rows], Backend]) -> Backend:
    return make([list(r) for r in COMPANIES])


def assign_all(backend: Backend) -> Table:
    """Add the bookkeeping columns and give each row the id "job-<first letter of Name>"."""
    sheet = backend.sheet
    table = sheet.ensure_columns(["Status", "Job ID"])
    ids = {i: "job-" + table.cell(i, "Name")[0].lower() for i in range(len(table.rows))}
    expected = {i: {"URL": table.cell(i, "URL")} for i in ids}
    assert sheet.assign_job_ids(ids, expected) == set()
    return sheet.read()


def test_is_a_sheet_that_reads_header_and_rows_as_text(companies: Backend) -> None:
    assert isinstance(companies.sheet, Sheet)
    table = companies.sheet.read()
    assert table.header == ["URL", "Name", "Notes"]
    assert table.rows[1][:3] == ["https://b.example", "Beta", "call back"]


def test_ensure_columns_appends_only_missing_columns_loosely(companies: Backend) -> None:
    table = companies.sheet.ensure_columns([" name ", "Job ID", "STATUS", "status"])
    assert table.header == ["URL", "Name", "Notes", "Job ID", "STATUS"]
    assert companies.sheet.read().header == table.header
    assert companies.values()[0] == table.header


def test_header_matching_ignores_case_and_spaces(make: Callable[[Rows], Backend]) -> None:
    backend = make([["url", " job  id ", "STATUS", "Name"], ["https://x.example", "j1", "", "X"]])
    assert backend.sheet.ensure_columns(["Job ID", "Status"]).header == [
        "url",
        " job  id ",
        "STATUS",
        "Name",
    ]
    assert backend.sheet.write_by_job_id({"j1": {"Status": "running"}}).cells == 1
    assert backend.values() == [
        ["url", " job  id ", "STATUS", "Name"],
        ["https://x.example", "j1", "running", "X"],
    ]


def test_assigned_ids_are_where_the_writes_land(companies: Backend) -> None:
    table = assign_all(companies)
    assert [table.cell(i, "Job ID") for i in range(3)] == ["job-a", "job-b", "job-g"]
    result = companies.sheet.write_by_job_id(
        {"job-a": {"status": "succeeded", "Score": "90"}, "job-g": {"Status": "failed"}}
    )
    assert result.cells == 3 and result.missing == frozenset()
    rows = companies.rows()
    assert rows["Alpha"]["Status"] == "succeeded" and rows["Alpha"]["Score"] == "90"
    assert rows["Beta"]["Status"] == "" and rows["Gamma"]["Status"] == "failed"


def test_writes_find_their_rows_after_the_operator_sorts(companies: Backend) -> None:
    assign_all(companies)
    header, *rows = companies.values()
    companies.replace([header, *sorted(rows, key=lambda r: r[1], reverse=True)])
    companies.sheet.write_by_job_id(
        {"job-a": {"Status": "succeeded"}, "job-b": {"Status": "failed"}}
    )
    assert [r[1] for r in companies.values()[1:]] == ["Gamma", "Beta", "Alpha"]  # sort kept
    rows = companies.rows()
    assert rows["Alpha"]["Status"] == "succeeded" and rows["Beta"]["Status"] == "failed"
    assert rows["Gamma"]["Status"] == ""


def test_writes_find_their_rows_after_a_row_is_inserted_at_the_top(companies: Backend) -> None:
    assign_all(companies)
    header, *rows = companies.values()
    companies.replace([header, ["https://new.example", "New"], *rows])
    companies.sheet.write_by_job_id({"job-a": {"Status": "succeeded"}})
    rows_now = companies.rows()
    assert rows_now["New"]["Status"] == "" and rows_now["Alpha"]["Status"] == "succeeded"


def test_a_deleted_row_is_missing_and_nothing_lands_elsewhere(companies: Backend) -> None:
    assign_all(companies)
    header, *rows = companies.values()
    companies.replace([header, *[r for r in rows if r[1] != "Beta"]])
    result = companies.sheet.write_by_job_id(
        {"job-b": {"Status": "failed"}, "job-g": {"Status": "ok"}}
    )
    assert result.missing == frozenset({"job-b"}) and result.cells == 1
    assert companies.column("Status") == ["", "ok"]


def test_operator_edits_in_other_columns_survive(companies: Backend) -> None:
    assign_all(companies)
    header, *rows = companies.values()
    rows[1] = [*rows[1][:2], "edited by the operator", *rows[1][3:]]
    companies.replace([header, *rows])
    companies.sheet.write_by_job_id({"job-b": {"Status": "succeeded"}})
    assert companies.rows()["Beta"] == {
        "URL": "https://b.example",
        "Name": "Beta",
        "Notes": "edited by the operator",
        "Status": "succeeded",
        "Job ID": "job-b",
    }


def test_job_ids_are_refused_on_rows_that_moved(companies: Backend) -> None:
    table = companies.sheet.ensure_columns(["Job ID"])
    expected = {i: {"URL": table.cell(i, "URL")} for i in range(3)}
    header, *rows = companies.values()
    companies.replace([header, rows[1], rows[0], rows[2]])  # the operator swaps a and b
    refused = companies.sheet.assign_job_ids({0: "j0", 1: "j1", 2: "j2"}, expected)
    assert refused == {0, 1}
    assert companies.column("Job ID") == ["", "", "j2"]


def test_job_ids_are_refused_on_deleted_rows_and_taken_cells(companies: Backend) -> None:
    companies.sheet.ensure_columns(["Job ID"])
    assert companies.sheet.assign_job_ids({0: "j0"}, {}) == set()
    assert companies.sheet.assign_job_ids({0: "j0"}, {}) == set()  # done already: not refused
    # Row 0 holds another id; row 7 does not exist; "j0" already sits on row 0.
    assert companies.sheet.assign_job_ids({0: "other", 7: "j7", 1: "j0"}, {}) == {0, 7, 1}
    assert companies.column("Job ID") == ["j0", "", ""]
