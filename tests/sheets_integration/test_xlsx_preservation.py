"""A real run on a workbook LibreOffice saved keeps everything of the operator's.

`fixtures/libreoffice_companies.xlsx` was made by LibreOffice Calc (see
`fixtures/make_libreoffice_workbook.py`): three worksheets, formulas with cached results
(=SUM(...) -> 2469, cross-sheet, a defined name), a chart, comments, a merged range C2:F2
over where output columns land, a hyperlinked cell and a =HYPERLINK formula, data
validation, a conditional format, dates and number formats. `sheetbatch run` writes its
columns into a copy; every other cell of every worksheet must read as before, with and
without cached values, and every other part of the package must be byte for byte the same.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from tests.support.cli import sheetbatch

FIXTURE = Path(__file__).parent / "fixtures" / "libreoffice_companies.xlsx"
WORKSHEET = "xl/worksheets/sheet1.xml"
STYLES = "xl/styles.xml"
WORKBOOK = "xl/workbook.xml"
# What the run writes: its own columns in the data rows, and the headers it appends.
WRITTEN_COLUMNS = ("Status", "Job ID", "Updated", "Error", "Name", "Description")


def run_formula_pipeline(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return sheetbatch(
        [
            "run",
            str(path),
            "--pipeline",
            "tests.support.pipelines:formula",
            "--db",
            f"sqlite:///{tmp_path / 'progress.db'}",
        ],
        cwd=tmp_path,
    )


def load(path: Path, *, data_only: bool) -> Workbook:
    return openpyxl.load_workbook(path, data_only=data_only)


def worksheet(book: Workbook, title: str) -> Worksheet:
    sheet = book[title]
    assert isinstance(sheet, Worksheet)
    return sheet


def cell_facts(cell: Cell | MergedCell, cached: Cell | MergedCell) -> dict[str, Any]:
    """Everything an operator sees of a cell: value, cached result, format, note, link."""
    return {
        "value": cell.value,
        "cached": cached.value,
        "type": cell.data_type,
        "number_format": cell.number_format,
        "font": repr(cell.font),
        "fill": repr(cell.fill),
        "border": repr(cell.border),
        "alignment": repr(cell.alignment),
        "protection": repr(cell.protection),
        "comment": (cell.comment.text, cell.comment.author) if cell.comment else None,
        "hyperlink": cell.hyperlink.target if cell.hyperlink else None,
    }


def cells(path: Path, extent: int = 60) -> dict[tuple[str, str], dict[str, Any]]:
    """Every cell of every worksheet in A1:<extent><extent>, by coordinate."""
    formulas, values = load(path, data_only=False), load(path, data_only=True)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for title in formulas.sheetnames:
        sheet, cached = worksheet(formulas, title), worksheet(values, title)
        assert sheet.max_row < extent and sheet.max_column < extent
        for row in range(1, extent + 1):
            for column in range(1, extent + 1):
                cell = sheet.cell(row, column)
                found[(title, cell.coordinate)] = cell_facts(cell, cached.cell(row, column))
    return found


def sheet_facts(path: Path) -> dict[str, Any]:
    """What lives beside the cells: merges, validation, conditional formats, names, panes."""
    book = load(path, data_only=False)
    facts: dict[str, Any] = {
        "titles": book.sheetnames,
        "names": {name: item.attr_text for name, item in book.defined_names.items()},
    }
    for title in book.sheetnames:
        sheet = worksheet(book, title)
        facts[title] = {
            "merged": sorted(str(r) for r in sheet.merged_cells.ranges),
            "validation": sorted(
                (str(v.sqref), v.type, v.formula1, v.operator)
                for v in sheet.data_validations.dataValidation
            ),
            "conditional": sorted(
                (str(cf.sqref), rule.type, rule.operator, tuple(rule.formula))
                for cf in sheet.conditional_formatting
                for rule in cf.rules
            ),
            "freeze": sheet.freeze_panes,
            "widths": {k: v.width for k, v in sheet.column_dimensions.items()},
        }
    return facts


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def outside_sheet_data(xml: bytes) -> bytes:
    """The worksheet part without its cells and its used-range hint."""
    xml = re.sub(rb"<sheetData>.*</sheetData>", b"<sheetData/>", xml, flags=re.DOTALL)
    return re.sub(rb'<dimension ref="[^"]*"/>', b"<dimension/>", xml)


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    copy = tmp_path / "companies.xlsx"
    shutil.copyfile(FIXTURE, copy)
    return copy


def test_a_run_keeps_every_cell_it_did_not_write_in_every_worksheet(
    workbook: Path, tmp_path: Path
) -> None:
    before, before_facts = cells(workbook), sheet_facts(workbook)
    assert before[("Totals", "B2")]["cached"] == 2469  # LibreOffice's cached =SUM(Revenue)

    out = run_formula_pipeline(workbook, tmp_path)
    assert out.returncode == 0, out.stderr

    after = cells(workbook)
    header = [after[("Companies", f"{c}1")]["value"] for c in "ABCDEFGHIJKLM"]
    assert header[-2:] == ["Updated", "Error"]  # appended after the used columns
    written = {
        ("Companies", f"{column}{row}")
        for column, name in zip("ABCDEFGHIJKLM", header, strict=True)
        if name in WRITTEN_COLUMNS
        for row in range(1, 6)
        if row > 1 or name in ("Updated", "Error")
    }
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed - written == set()
    for key in sorted(before.keys() - written):
        assert after[key] == before[key], key
    assert sheet_facts(workbook) == before_facts

    # What the run did write, where it could.
    sheet = worksheet(load(workbook, data_only=False), "Companies")
    assert [sheet[f"G{row}"].value for row in range(2, 6)] == ["completed"] * 4
    assert all(str(sheet[f"H{row}"].value).startswith("j-") for row in range(2, 6))
    for row in range(3, 6):  # formula-like output stays quoted text
        name = sheet[f"E{row}"]
        assert (name.value, name.data_type) == ('=HYPERLINK("http://evil.test","click")', "s")
        assert name.quotePrefix
    assert isinstance(sheet["E2"], MergedCell) and sheet["E2"].value is None
    cached = load(workbook, data_only=True)
    assert worksheet(cached, "Totals")["B2"].value == 2469
    assert worksheet(cached, "Totals")["B3"].value == 2469
    assert worksheet(cached, "Notes")["A2"].value == 4938


def test_a_run_changes_only_the_worksheet_it_writes_and_a_format_it_adds(
    workbook: Path, tmp_path: Path
) -> None:
    before = parts(workbook)
    assert run_formula_pipeline(workbook, tmp_path).returncode == 0
    after = parts(workbook)

    assert list(after) == list(before)  # no part added, removed or reordered
    untouched = [name for name in before if name not in (WORKSHEET, STYLES, WORKBOOK)]
    assert "xl/charts/chart1.xml" in untouched and "xl/comments1.xml" in untouched
    assert {name: after[name] for name in untouched} == {name: before[name] for name in untouched}
    assert outside_sheet_data(after[WORKSHEET]) == outside_sheet_data(before[WORKSHEET])
    # workbook.xml: only Excel's "recalculate on open", for formulas over the cells written.
    assert after[WORKBOOK] == before[WORKBOOK].replace(
        b'iterateDelta="0.0001"/>', b'iterateDelta="0.0001" fullCalcOnLoad="1"/>'
    )
    assert after[WORKBOOK] != before[WORKBOOK]

    # styles.xml: one cell format appended (the quote-prefixed copy), nothing else changed.
    def cell_formats(xml: bytes) -> tuple[bytes, bytes]:
        """(the part without the <xf>s of <cellXfs> and their count, those <xf>s)"""
        found = re.search(rb'(.*<cellXfs count=")\d+(">)(.*?)(</cellXfs>.*)', xml, re.DOTALL)
        assert found is not None
        return found.group(1) + found.group(2) + found.group(4), found.group(3)

    outside_before, formats_before = cell_formats(before[STYLES])
    outside_after, formats_after = cell_formats(after[STYLES])
    assert outside_after == outside_before
    assert formats_after.startswith(formats_before)
    added = formats_after[len(formats_before) :]
    assert added.count(b"<xf ") == 1 and b'quotePrefix="1"' in added


def test_a_second_run_with_nothing_to_do_leaves_the_file_as_it_is(
    workbook: Path, tmp_path: Path
) -> None:
    assert run_formula_pipeline(workbook, tmp_path).returncode == 0
    first = parts(workbook)
    assert run_formula_pipeline(workbook, tmp_path).returncode == 0
    second = parts(workbook)
    changed = [name for name in first if first[name] != second[name]]
    # Only the Updated timestamps may be rewritten; nothing is added or duplicated.
    assert changed in ([], [WORKSHEET])
    assert second[STYLES] == first[STYLES] and second[WORKBOOK] == first[WORKBOOK]


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("soffice") is None,
    reason="LibreOffice is an optional local check (apt-get install libreoffice-calc-nogui)",
)
def test_libreoffice_opens_the_written_workbook_and_recomputes_it(
    workbook: Path, tmp_path: Path
) -> None:
    assert run_formula_pipeline(workbook, tmp_path).returncode == 0
    out_dir = tmp_path / "csv"
    converted = subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
            "--outdir",
            str(out_dir),
            str(workbook),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert converted.returncode == 0, converted.stderr
    sheets = {p.stem.rsplit("-", 1)[-1]: p for p in out_dir.glob("*.csv")}
    with sheets["Totals"].open(encoding="utf-8") as stream:
        totals = {row[0]: row[1] for row in csv.reader(stream) if row}
    assert totals["Total revenue"] == "2469"
    assert totals["Cross-sheet sum"] == "2469"
    with sheets["Companies"].open(encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0][-2:] == ["Updated", "Error"]
    assert [row[6] for row in rows[1:5]] == ["completed"] * 4
    assert rows[2][4] == '=HYPERLINK("http://evil.test","click")'  # text, not a link
