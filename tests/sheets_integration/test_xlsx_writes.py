"""XlsxSheet: numbers as numbers, merged cells, hyperlink targets, broken packages."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.hyperlink import Hyperlink

from sheets_integration.errors import BadSheet
from sheets_integration.xlsx_sheet import XlsxSheet
from tests.sheets_integration.fixtures.workbooks import (
    FIXTURE,
    MAIN,
    hand_made,
    inline,
    loaded,
    make_workbook,
    part,
)
from tests.support.cli import sheetbatch

# --- numbers -----------------------------------------------------------------------------------


def test_numbers_are_written_as_numeric_cells(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "n.xlsx", [["URL", "Job ID"], ["a", "j1"], ["b", "j2"]])
    sheet = XlsxSheet(path)
    result = sheet.write_by_job_id(
        {
            "j1": {"Score": 100, "Ratio": 0.25, "Zip": "00123", "Status": "ok"},
            "j2": {"Score": -7.5, "Ratio": 1e-7, "Zip": "1e5", "Status": "ok"},
        }
    )
    assert result.cells == 8
    ws = loaded(path)
    assert [(c.value, c.data_type) for c in ws[2]] == [
        ("a", "s"),
        ("j1", "s"),
        (100, "n"),
        (0.25, "n"),
        ("00123", "s"),  # text that looks like a number stays text
        ("ok", "s"),
    ]
    assert [ws.cell(3, c).value for c in (3, 4, 5)] == [-7.5, 1e-7, "1e5"]
    assert '<c r="C2"><v>100</v></c>' in part(path, "xl/worksheets/sheet1.xml")
    table = sheet.read()
    assert [table.cell(0, c) for c in ("Score", "Ratio", "Zip")] == ["100", "0.25", "00123"]
    assert [table.cell(1, c) for c in ("Score", "Ratio")] == ["-7.5", "1e-07"]


def test_numbers_a_spreadsheet_cannot_hold_exactly_are_written_as_text(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "n.xlsx", [["URL", "Job ID"], ["a", "j1"]])
    XlsxSheet(path).write_by_job_id(
        {"j1": {"Id": 12345678901234567, "Nan": float("nan"), "Inf": float("inf")}}
    )
    ws = loaded(path)
    assert [(c.value, c.data_type) for c in ws[2]][2:] == [
        ("12345678901234567", "s"),  # 17 digits: a number would lose the last two
        ("nan", "s"),
        ("inf", "s"),
    ]


def test_a_number_over_quoted_text_drops_the_quote_prefix_and_is_not_rewritten_twice(
    tmp_path: Path,
) -> None:
    path = make_workbook(tmp_path / "n.xlsx", [["URL", "Job ID"], ["a", "j1"]])
    sheet = XlsxSheet(path)
    sheet.write_by_job_id({"j1": {"Score": "-not a number"}})
    assert loaded(path)["C2"].quotePrefix
    sheet.write_by_job_id({"j1": {"Score": 42}})
    cell = loaded(path)["C2"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == (42, "n", False)
    before = path.stat().st_mtime_ns, path.stat().st_ino
    assert sheet.write_by_job_id({"j1": {"Score": 42.0}}).cells == 1
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


# --- merged cells ------------------------------------------------------------------------------


@pytest.fixture
def merged(tmp_path: Path) -> Path:
    path = make_workbook(
        tmp_path / "m.xlsx",
        [
            ["URL", "Company", "Notes", "Owner", "Name", "Description", "Status", "Job ID"],
            ["https://a.example", "Acme", "key account, call first", None, None, None, None, "j1"],
            ["https://b.example", "Beta", None, None, None, None, None, "j2"],
        ],
    )
    book = openpyxl.load_workbook(path)
    book["Companies"].merge_cells("C2:F2")
    book.save(path)
    return path


def test_cells_inside_a_merged_range_are_named_in_the_table(merged: Path) -> None:
    table = XlsxSheet(merged).read()
    assert dict(table.merged) == {(0, 3): "C2:F2", (0, 4): "C2:F2", (0, 5): "C2:F2"}
    assert (0, 2) not in table.merged  # the top-left cell holds the merge's value
    assert table.cell(0, "Notes") == "key account, call first"


def test_a_write_into_a_merged_cell_fails_alone_and_the_row_gets_the_rest(merged: Path) -> None:
    result = XlsxSheet(merged).write_by_job_id(
        {
            "j1": {"Status": "completed", "Name": "ACME", "Description": "anvils"},
            "j2": {"Status": "completed", "Name": "BETA"},
        }
    )
    assert result.missing == frozenset()
    assert result.unwritable == {
        "j1": (
            "cell E2 is inside merged range C2:F2; not written",
            "cell F2 is inside merged range C2:F2; not written",
        )
    }
    assert result.cells == 3
    ws = loaded(merged)
    assert [ws[c].value for c in ("G2", "H2", "E3", "G3")] == [
        "completed",
        "j1",
        "BETA",
        "completed",
    ]
    assert [str(r) for r in ws.merged_cells.ranges] == ["C2:F2"]
    assert ws["C2"].value == "key account, call first"


def test_a_job_id_cell_inside_a_merged_range_is_refused(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "m.xlsx", [["URL", "Notes", "Job ID"], ["a", "long note"]])
    book = openpyxl.load_workbook(path)
    book["Companies"].merge_cells("B2:C2")
    book.save(path)
    before = path.read_bytes()
    assert XlsxSheet(path).assign_job_ids({0: "j1"}, {0: {"URL": "a"}}) == {0}
    assert path.read_bytes() == before


def test_a_value_hidden_under_a_merge_reads_as_the_spreadsheet_shows_it(tmp_path: Path) -> None:
    rows = (
        f'<row r="1">{inline("A1", "URL")}{inline("B1", "Notes")}{inline("C1", "Job ID")}</row>'
        f'<row r="2">{inline("A2", "a")}{inline("B2", "shown")}{inline("C2", "hidden")}</row>'
    )
    xml = (
        f'<worksheet xmlns="{MAIN}"><sheetData>{rows}</sheetData>'
        '<mergeCells count="1"><mergeCell ref="B2:C2"/></mergeCells></worksheet>'
    )
    table = XlsxSheet(hand_made(tmp_path / "m.xlsx", xml)).read()
    assert table.rows == [["a", "shown"]]  # Excel shows only a merge's top-left value
    assert dict(table.merged) == {(0, 2): "B2:C2"}


def test_a_column_whose_header_cell_is_merged_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "m.xlsx", [["URL", "Notes"], ["a", "x"]])
    book = openpyxl.load_workbook(path)
    book["Companies"].merge_cells("B1:C1")  # a wide "Notes" title over an empty column
    book.save(path)
    before = path.read_bytes()
    with pytest.raises(BadSheet, match=r"cannot add the column 'Status': cell C1 is inside merged"):
        XlsxSheet(path).ensure_columns(["Status"])
    assert path.read_bytes() == before


# --- hyperlinks --------------------------------------------------------------------------------


def test_hyperlinked_cells_and_hyperlink_formulas_give_their_target(tmp_path: Path) -> None:
    path = make_workbook(
        tmp_path / "h.xlsx",
        [
            ["Company", "Website"],
            ["Acme", "Acme site"],
            ["Beta", '=HYPERLINK("https://beta.example","Beta site")'],
            ["Gamma", '=hyperlink("https://gamma.example/?q=""x""")'],
            ["Delta", '=_xlfn.HYPERLINK("https://delta.example";"Delta")'],
            ["Eps", "https://eps.example"],
            ["Zeta", "see the notes tab"],
            ["Eta", '=HYPERLINK("https://eta.example","a")&T("b")'],
        ],
    )
    book = openpyxl.load_workbook(path)
    ws = book["Companies"]
    ws["B2"].hyperlink = "https://acme.example"
    ws["B7"].hyperlink = Hyperlink(ref="B7", location="'Companies'!A1")  # inside the workbook
    book.save(path)

    table = XlsxSheet(path).read()
    targets = [table.target(i, "Website") for i in range(len(table.rows))]
    assert targets == [
        "https://acme.example",
        "https://beta.example",
        'https://gamma.example/?q="x"',
        "https://delta.example",
        "https://eps.example",
        "see the notes tab",
        '=HYPERLINK("https://eta.example","a")&T("b")',  # not a link: a text formula
    ]
    assert table.cell(0, "Website") == "Acme site"  # the text stays what the cell shows
    assert set(table.links) == {(0, 1), (1, 1), (2, 1), (3, 1)}


def test_a_libreoffice_workbook_reads_as_it_shows(tmp_path: Path) -> None:
    path = shutil.copyfile(FIXTURE, tmp_path / "lo.xlsx")
    table = XlsxSheet(path).read()
    assert table.header[:4] == ["Company", "Website", "Notes", "Contact"]
    acme, beta = table.row_dict(0), table.row_dict(1)
    assert (acme["Website"], table.target(0, "Website")) == ("Acme site", "https://acme.example/")
    # A =HYPERLINK cell shows its label (LibreOffice cached it) and links to its URL.
    assert (beta["Website"], table.target(1, "Website")) == ("Beta site", "https://beta.example")
    assert (acme["Revenue"], acme["Founded"]) == ("1,000", "1999-03-01")
    assert acme["Share"] == '=IF(I2="","",I2/SUM($I$2:$I$5))'  # other formulas as their text
    assert table.row_dict(3)["Notes"] == "00123"
    assert XlsxSheet(path, "Totals").read().rows[0] == ["Total revenue", "=SUM(Revenue)"]
    assert XlsxSheet(path, "Totals").read().rows[4] == ["Acme link", "Acme site"]


def test_a_hyperlink_formula_without_a_cached_label_reads_as_its_formula(tmp_path: Path) -> None:
    formula = '=HYPERLINK("https://beta.example","Beta site")'
    path = make_workbook(tmp_path / "h.xlsx", [["Website"], [formula]])  # openpyxl caches nothing
    table = XlsxSheet(path).read()
    assert (table.cell(0, "Website"), table.target(0, "Website")) == (
        formula,
        "https://beta.example",
    )


# --- broken packages ---------------------------------------------------------------------------


def test_a_zip_without_a_workbook_part_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    with zipfile.ZipFile(path, "w") as archive:  # a package, but of no workbook
        archive.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(BadSheet, match=r"^empty\.xlsx: not an \.xlsx workbook \(the zip has no"):
        XlsxSheet(path).read()
    out = sheetbatch(["run", str(path), "--db", f"sqlite:///{tmp_path / 'p.db'}"], cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "no workbook part" in out.stderr


def test_broken_worksheet_parts_are_bad_sheets(tmp_path: Path) -> None:
    broken = hand_made(tmp_path / "broken.xlsx", f'<worksheet xmlns="{MAIN}"><sheetData><row>')
    with pytest.raises(BadSheet, match="not well-formed XML"):
        XlsxSheet(broken).read()
    path = make_workbook(tmp_path / "lost.xlsx", [["URL"], ["a"]])
    stripped = tmp_path / "stripped.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(stripped, "w") as target:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                target.writestr(info, source.read(info))
    with pytest.raises(BadSheet, match=r"lacks its worksheet part xl/worksheets/sheet1\.xml"):
        XlsxSheet(stripped).read()
