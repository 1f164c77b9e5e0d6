"""XlsxSheet against real workbooks: what only .xlsx has (text as shown, styles and other
worksheets kept, literal writes). What every backend promises is in test_sheet_contract.py."""

from __future__ import annotations

import datetime as dt
import os
import stat
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.styles import Font
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from sheets_integration.errors import BadSheet, SheetNotFound
from sheets_integration.safety import MAX_CELL_CHARS
from sheets_integration.sheet import Sheet, Table
from sheets_integration.xlsx_sheet import XlsxSheet


def make_workbook(path: Path, rows: list[list[Any]], title: str = "Companies") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)
    sheet.title = title
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def edit_workbook(path: Path, change: Any, title: str = "Companies") -> None:
    """Open `path` as the operator's spreadsheet program would, change it, save it."""
    workbook = openpyxl.load_workbook(path)
    change(workbook[title])
    workbook.save(path)


def edit_book(path: Path, change: Callable[[Workbook], object]) -> None:
    workbook = openpyxl.load_workbook(path)
    change(workbook)
    workbook.save(path)


def by_name(path: Path) -> dict[str, dict[str, str]]:
    table = XlsxSheet(path).read()
    return {table.cell(i, "Name"): table.row_dict(i) for i in range(len(table.rows))}


@pytest.fixture
def companies(tmp_path: Path) -> Path:
    return make_workbook(
        tmp_path / "companies.xlsx",
        [
            ["URL", "Name", "Notes"],
            ["https://a.example", "Alpha", None],
            ["https://b.example", "Beta", "call back"],
            ["https://c.example", "Gamma", None],
        ],
    )


def assign_all(sheet: XlsxSheet) -> Table:
    table = sheet.ensure_columns(["Status", "Job ID"])
    ids = {i: "job-" + table.cell(i, "Name")[0].lower() for i in range(len(table.rows))}
    expected = {i: {"URL": table.cell(i, "URL")} for i in ids}
    assert sheet.assign_job_ids(ids, expected) == set()
    return sheet.read()


def sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read("xl/worksheets/sheet1.xml").decode()


def test_is_a_sheet(companies: Path) -> None:
    sheet = XlsxSheet(companies)
    assert isinstance(sheet, Sheet)
    assert sheet.name == "companies.xlsx"
    assert XlsxSheet(companies, "Companies").name == "companies.xlsx#Companies"


def test_read_returns_text_as_the_user_sees_it(tmp_path: Path) -> None:
    path = make_workbook(
        tmp_path / "types.xlsx",
        [
            ["Text zip", "Int", "Float", "Whole float", "Bool", "Formula", "Sum"],
            ["00123", 42, 3.5, 42.0, True, "=SUM(B2:C2)", 0.1 + 0.2],
        ],
    )

    def formats(sheet: Worksheet) -> None:
        sheet.append(
            ["zip", 123, 0.315, 1234.5, dt.date(2024, 5, 1), dt.datetime(2024, 5, 1, 13, 45)]
        )
        sheet["B3"].number_format = "00000"
        sheet["C3"].number_format = "0.0%"
        sheet["D3"].number_format = "#,##0.00"
        sheet["E3"].number_format = "yyyy-mm-dd"
        sheet.append(["neg", -7, -0.5, 0.5])
        sheet["C4"].number_format = "0.00"
        sheet["D4"].number_format = "#.00"

    edit_workbook(path, formats)
    table = XlsxSheet(path).read()
    assert table.rows[0] == ["00123", "42", "3.5", "42", "TRUE", "=SUM(B2:C2)", "0.3"]
    assert table.rows[1] == [
        "zip",
        "00123",
        "31.5%",
        "1,234.50",
        "2024-05-01",
        "2024-05-01 13:45:00",
    ]
    assert table.rows[2] == ["neg", "-7", "-0.50", ".50"]


def test_trailing_empty_cells_and_rows_are_not_in_the_table(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "t.xlsx", [["URL", "Job ID"], ["x", None], [None], ["y", "j"]])

    def style_far_away(sheet: Worksheet) -> None:
        sheet["H40"].font = Font(bold=True)  # a styled empty cell widens max_row/max_column

    edit_workbook(path, style_far_away)
    table = XlsxSheet(path).read()
    assert table.header == ["URL", "Job ID"]
    assert table.rows == [["x"], [], ["y", "j"]]


def test_round_trip_keeps_other_worksheets_and_styles(companies: Path) -> None:
    def decorate(workbook: Workbook) -> None:
        workbook["Companies"]["A1"].font = Font(bold=True)
        workbook.create_sheet("Notes")["A1"] = "keep me"

    edit_book(companies, decorate)
    sheet = XlsxSheet(companies)
    table = assign_all(sheet)
    assert [table.cell(i, "Job ID") for i in range(3)] == ["job-a", "job-b", "job-g"]
    result = sheet.write_by_job_id({"job-a": {"status": "succeeded", "Score": "90"}})
    assert (result.cells, result.missing) == (2, frozenset())

    workbook = openpyxl.load_workbook(companies)
    assert workbook["Notes"]["A1"].value == "keep me"
    assert workbook["Companies"]["A1"].font.bold
    assert by_name(companies)["Alpha"] == {
        "URL": "https://a.example",
        "Name": "Alpha",
        "Notes": "",
        "Status": "succeeded",
        "Job ID": "job-a",
        "Score": "90",
    }


def test_formula_strings_are_written_as_text(companies: Path) -> None:
    sheet = XlsxSheet(companies)
    assign_all(sheet)
    nasty = {
        "A": "=1+1",
        "B": '=HYPERLINK("http://x","y")',
        "C": "+cmd",
        "D": "@SUM(A1)",
        "E": "#N/A",
        "F": "00123",
    }
    sheet.write_by_job_id({"job-a": nasty})
    # A second write reloads and re-saves the workbook: the strings must stay strings.
    sheet.write_by_job_id({"job-b": {"Status": "ok"}})

    ws = openpyxl.load_workbook(companies)["Companies"]
    header = [cell.value for cell in ws[1]]
    for column, text in nasty.items():
        cell = ws.cell(2, header.index(column) + 1)
        assert (cell.value, cell.data_type) == (text, "s")
    assert ws.cell(2, header.index("A") + 1).quotePrefix
    assert "<f>" not in sheet_xml(companies)
    assert by_name(companies)["Alpha"]["B"] == '=HYPERLINK("http://x","y")'


def test_operator_formulas_are_kept_and_read_as_their_text(companies: Path) -> None:
    edit_workbook(companies, lambda ws: ws.cell(2, 3, "=LEN(B2)"))
    sheet = XlsxSheet(companies)
    assign_all(sheet)
    sheet.write_by_job_id({"job-a": {"Status": "ok"}})
    assert by_name(companies)["Alpha"]["Notes"] == "=LEN(B2)"
    assert openpyxl.load_workbook(companies)["Companies"]["C2"].data_type == "f"


def test_unicode_control_characters_long_values_and_clearing(companies: Path) -> None:
    sheet = XlsxSheet(companies)
    assign_all(sheet)
    sheet.write_by_job_id(
        {
            "job-a": {"Status": "Zoë 東京 🚀", "Error": "bad\x00byte\x0b"},
            "job-b": {"Status": "x" * (MAX_CELL_CHARS + 10)},
        }
    )
    rows = by_name(companies)
    assert rows["Alpha"]["Status"] == "Zoë 東京 🚀"
    assert rows["Alpha"]["Error"] == "badbyte"
    assert len(rows["Beta"]["Status"]) == MAX_CELL_CHARS
    assert rows["Beta"]["Status"].endswith("…")
    sheet.write_by_job_id({"job-a": {"Error": ""}})
    assert openpyxl.load_workbook(companies)["Companies"].cell(2, 6).value is None


def test_worksheet_selection(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "multi.xlsx", [["URL"], ["first"]], title="First")

    def add_second(workbook: Workbook) -> None:
        second = workbook.create_sheet("Second Sheet")
        second.append(["URL"])
        second.append(["second"])

    edit_book(path, add_second)
    assert XlsxSheet(path, "Second Sheet").read().rows == [["second"]]
    assert XlsxSheet(path, "secondsheet").read().rows == [["second"]]
    with pytest.raises(SheetNotFound, match="'First', 'Second Sheet'"):
        XlsxSheet(path, "Third").read()

    default = XlsxSheet(path)
    assert default.read().rows == [["first"]]
    edit_book(path, lambda workbook: workbook.move_sheet("Second Sheet", offset=-1))
    assert default.read().rows == [["first"]]  # the sheet it started with, not the new first tab
    assert default.name == "multi.xlsx"  # a stable identity, whatever was resolved


def test_write_keeps_mode_and_leaves_no_temp_files(companies: Path) -> None:
    os.chmod(companies, 0o600)
    sheet = XlsxSheet(companies)
    assign_all(sheet)
    sheet.write_by_job_id({"job-a": {"Status": "ok"}})
    assert stat.S_IMODE(companies.stat().st_mode) == 0o600
    assert sorted(p.name for p in companies.parent.iterdir()) == ["companies.xlsx"]


def test_unchanged_values_do_not_rewrite_the_file(companies: Path) -> None:
    sheet = XlsxSheet(companies)
    assign_all(sheet)
    sheet.write_by_job_id({"job-a": {"Status": "ok"}})
    before = companies.stat().st_mtime_ns, companies.stat().st_ino
    assert sheet.write_by_job_id({"job-a": {"Status": "ok"}}).cells == 1
    assert (companies.stat().st_mtime_ns, companies.stat().st_ino) == before


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("URL,Name\n")
    with pytest.raises(BadSheet, match=r"save it again as \.xlsx"):
        XlsxSheet(path).read()


def test_concurrent_writers_in_threads_do_not_lose_updates(tmp_path: Path) -> None:
    count = 12
    path = make_workbook(
        tmp_path / "many.xlsx",
        [["URL", "Job ID"], *[[f"https://{i}", f"j{i}"] for i in range(count)]],
    )

    def work(i: int) -> None:
        XlsxSheet(path).write_by_job_id({f"j{i}": {"Status": f"done {i}"}})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    table = XlsxSheet(path).read()
    assert [table.cell(i, "Status") for i in range(count)] == [f"done {i}" for i in range(count)]
