"""XlsxSheet's part-level edit: what rewriting only the cells written must get right
(shared formulas, the calculation chain, prefixed or reference-less XML, escapes, styles of
new cells, rows found however they are written) and a seeded random-writes check."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.styles import Font

from sheets_integration.xlsx_sheet import XlsxSheet
from sheets_integration.xlsx_splice import splice
from sheets_integration.xlsx_styles import Styles
from tests.sheets_integration.fixtures.workbooks import (
    MAIN,
    hand_made,
    inline,
    loaded,
    make_workbook,
    part,
)


def test_overwriting_a_shared_formula_keeps_the_cells_that_shared_it(tmp_path: Path) -> None:
    rows = [
        f'<row r="1">{inline("A1", "N")}{inline("B1", "Twice")}{inline("C1", "Job ID")}</row>',
        f'<row r="2"><c r="A2"><v>1</v></c><c r="B2"><f t="shared" ref="B2:B4" si="0">A2*2</f>'
        f"<v>2</v></c>{inline('C2', 'j1')}</row>",
        '<row r="3"><c r="A3"><v>2</v></c><c r="B3"><f t="shared" si="0"/><v>4</v></c></row>',
        '<row r="4"><c r="A4"><v>3</v></c><c r="B4"><f t="shared" si="0"/><v>6</v></c></row>',
    ]
    path = hand_made(
        tmp_path / "shared.xlsx",
        f'<worksheet xmlns="{MAIN}"><sheetData>{"".join(rows)}</sheetData></worksheet>',
    )
    sheet = XlsxSheet(path)
    assert [r[1] for r in sheet.read().rows] == ["=A2*2", "=A3*2", "=A4*2"]
    sheet.write_by_job_id({"j1": {"Twice": "replaced"}})
    ws = loaded(path)
    assert [ws[c].value for c in ("B2", "B3", "B4")] == ["replaced", "=A3*2", "=A4*2"]
    assert [loaded(path, data_only=True)[c].value for c in ("B3", "B4")] == [4, 6]


def test_an_overwritten_formula_leaves_the_calculation_chain(tmp_path: Path) -> None:
    rows = [
        f'<row r="1">{inline("A1", "Job ID")}{inline("B1", "Total")}{inline("C1", "Other")}</row>',
        f'<row r="2">{inline("A2", "j1")}<c r="B2"><f>1+1</f><v>2</v></c>'
        '<c r="C2"><f>2+2</f><v>4</v></c></row>',
    ]
    chain = f'<calcChain xmlns="{MAIN}"><c r="B2" i="1"/><c r="C2"/></calcChain>'
    path = hand_made(
        tmp_path / "chain.xlsx",
        f'<worksheet xmlns="{MAIN}"><sheetData>{"".join(rows)}</sheetData></worksheet>',
        **{"xl/calcChain.xml": chain},
    )
    sheet = XlsxSheet(path)
    sheet.write_by_job_id({"j1": {"Total": 5}})
    # C2 inherited its sheet from B2's entry: it now names it itself.
    assert (
        part(path, "xl/calcChain.xml") == f'<calcChain xmlns="{MAIN}"><c i="1" r="C2"/></calcChain>'
    )
    sheet.write_by_job_id({"j1": {"Other": "x"}})
    with zipfile.ZipFile(path) as archive:
        assert "xl/calcChain.xml" not in archive.namelist()
    assert "calcChain" not in part(path, "[Content_Types].xml")
    assert "calcChain" not in part(path, "xl/_rels/workbook.xml.rels")
    assert [c.value for c in loaded(path)[2]] == ["j1", 5, "x"]


def test_prefixed_spreadsheetml_is_read_and_written_in_its_own_prefix(tmp_path: Path) -> None:
    cell = '<x:c r="{}" t="inlineStr"><x:is><x:t>{}</x:t></x:is></x:c>'
    xml = (
        f'<x:worksheet xmlns:x="{MAIN}"><x:dimension ref="A1:B2"/><x:sheetData>'
        f'<x:row r="1">{cell.format("A1", "URL")}{cell.format("B1", "Job ID")}</x:row>'
        f'<x:row r="2">{cell.format("A2", "https://a.example")}{cell.format("B2", "j1")}</x:row>'
        "</x:sheetData></x:worksheet>"
    )
    path = hand_made(tmp_path / "prefixed.xlsx", xml)
    sheet = XlsxSheet(path)
    assert sheet.read().rows == [["https://a.example", "j1"]]
    sheet.write_by_job_id({"j1": {"Status": "completed", "Score": 3}})
    written = part(path, "xl/worksheets/sheet1.xml")
    assert '<x:c r="D2"><x:v>3</x:v></x:c>' in written
    assert '<x:dimension ref="A1:D2"/>' in written
    assert [c.value for c in loaded(path)[2]] == ["https://a.example", "j1", "completed", 3]


def test_rows_and_cells_without_references_keep_their_places(tmp_path: Path) -> None:
    xml = (
        f'<worksheet xmlns="{MAIN}"><sheetData>'
        '<row><c t="inlineStr"><is><t>URL</t></is></c><c t="inlineStr"><is><t>Job ID</t></is></c>'
        '<c t="inlineStr"><is><t>Status</t></is></c></row>'
        '<row><c t="inlineStr"><is><t>a</t></is></c><c t="inlineStr"><is><t>j1</t></is></c></row>'
        '<row><c t="inlineStr"><is><t>b</t></is></c><c t="inlineStr"><is><t>j2</t></is></c>'
        '<c t="inlineStr"><is><t>old</t></is></c></row>'
        "</sheetData></worksheet>"
    )
    path = hand_made(tmp_path / "implicit.xlsx", xml)
    sheet = XlsxSheet(path)
    assert sheet.read().rows == [["a", "j1"], ["b", "j2", "old"]]
    sheet.write_by_job_id({"j1": {"Status": "done"}, "j2": {"Status": "new"}})
    assert [[c.value for c in row] for row in loaded(path).iter_rows()] == [
        ["URL", "Job ID", "Status"],
        ["a", "j1", "done"],
        ["b", "j2", "new"],
    ]


def test_text_keeps_underscore_escapes_line_breaks_and_spaces(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "t.xlsx", [["URL", "Job ID"], ["a", "j1"]])
    sheet = XlsxSheet(path)
    values = {"Code": "a_x0041_b", "Lines": "one\r\ntwo", "Padded": "  both ends  ", "Amp": "<&>"}
    sheet.write_by_job_id({"j1": values})
    table = sheet.read()
    assert {column: table.cell(0, column) for column in values} == values
    # openpyxl shows inline strings raw: the escape that keeps "_x0041_" literal in Excel
    # and LibreOffice ("_x005F_" is "_") is visible there.
    assert [c.value for c in loaded(path)[2]][2:] == ["a_x005F_x0041_b", *list(values.values())[1:]]


def test_a_write_asks_excel_to_recalculate_formulas_on_open(tmp_path: Path) -> None:
    rows = (
        f'<row r="1">{inline("A1", "Job ID")}{inline("B1", "Score")}{inline("C1", "Total")}</row>'
        f'<row r="2">{inline("A2", "j1")}<c r="B2"><v>1</v></c>'
        '<c r="C2"><f>SUM(B2:B3)</f><v>3</v></c></row>'
    )
    path = hand_made(
        tmp_path / "calc.xlsx",
        f'<worksheet xmlns="{MAIN}"><sheetData>{rows}</sheetData></worksheet>',
    )
    assert "calcPr" not in part(path, "xl/workbook.xml")
    XlsxSheet(path).write_by_job_id({"j1": {"Score": 10}})
    assert part(path, "xl/workbook.xml").endswith(
        '</sheets><calcPr fullCalcOnLoad="1"/></workbook>'
    )
    book = openpyxl.load_workbook(path)
    assert book.calculation.fullCalcOnLoad
    # The stale total stays as the file had it until Excel recomputes it: nothing is guessed.
    assert loaded(path, data_only=True)["C2"].value == 3


def test_rich_text_shared_strings_read_as_their_text(tmp_path: Path) -> None:
    strings = (
        f'<sst xmlns="{MAIN}"><si><t>URL</t></si><si><t>Job ID</t></si>'
        '<si><r><t>Ac</t></r><r><rPr><b/></rPr><t xml:space="preserve">me </t></r>'
        '<rPh sb="0" eb="1"><t>アクメ</t></rPh></si><si><t>Tab_x0009_here</t></si></sst>'
    )
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>'
    )
    path = hand_made(
        tmp_path / "rich.xlsx",
        f'<worksheet xmlns="{MAIN}"><sheetData>{rows}</sheetData></worksheet>',
        **{"xl/sharedStrings.xml": strings},
    )
    sheet = XlsxSheet(path)
    assert sheet.read().rows == [["Acme ", "Tab\there"]]
    sheet.write_by_job_id({"Tab\there": {"Status": "done"}})  # unchanged cells stay shared
    assert '<c r="A2" t="s"><v>2</v></c>' in part(path, "xl/worksheets/sheet1.xml")
    assert loaded(path)["C2"].value == "done"


def test_rows_are_found_whatever_their_attributes_and_quotes(
    tmp_path: Path,
) -> None:
    def row(number: int, job: str, quote: str = '"') -> str:
        cells = inline(f"A{number}", "x") + inline(f"B{number}", job)
        return f'<row spans="1:2" r={quote}{number}{quote} ht="15">{cells}</row>'

    rows = (
        row(1, "Job ID")
        + row(2, "j2")
        + row(4, "j4", "'")
        + "".join(row(n, f"j{n}") for n in range(6, 40))
    )
    path = hand_made(
        tmp_path / "rows.xlsx",
        f'<worksheet xmlns="{MAIN}"><dimension ref="A1:B39"/><sheetData>{rows}</sheetData>'
        "</worksheet>",
    )
    sheet = XlsxSheet(path)
    sheet.write_by_job_id({"j4": {"Status": "four"}, "j38": {"Status": "38"}, "j2": {"Status": 2}})
    ws = loaded(path)
    assert [ws[f"C{n}"].value for n in (1, 2, 3, 4, 5, 6, 38, 39)] == [
        "Status",
        2,
        None,
        "four",
        None,
        None,
        "38",
        None,
    ]
    assert ws["B38"].value == "j38"
    assert '<dimension ref="A1:C39"/>' in part(path, "xl/worksheets/sheet1.xml")
    assert '<row spans="1:3" r=\'4\' ht="15">' in part(path, "xl/worksheets/sheet1.xml")


def test_splicing_rows_the_part_lacks_inserts_them_in_order() -> None:
    xml = (
        f'<worksheet xmlns="{MAIN}"><sheetData>'
        f'<row r="1">{inline("A1", "h")}</row><row r="3">{inline("A3", "three")}</row>'
        "</sheetData></worksheet>"
    ).encode()
    styles = Styles(None, "", "t.xlsx")
    spliced = splice(
        xml, {2: {1: "two"}, 5: {2: 5}, 4: {1: ""}}, styles=styles, strings=[], sheet="t"
    )
    assert spliced.changed
    assert spliced.data.decode() == (
        f'<worksheet xmlns="{MAIN}"><sheetData>'
        f'<row r="1">{inline("A1", "h")}</row><row r="2">{inline("A2", "two")}</row>'
        f'<row r="3">{inline("A3", "three")}</row><row r="5"><c r="B5"><v>5</v></c></row>'
        "</sheetData></worksheet>"
    )
    empty = f'<worksheet xmlns="{MAIN}"><sheetData/></worksheet>'.encode()
    assert splice(empty, {1: {1: "x"}}, styles=styles, strings=[], sheet="t").data.decode() == (
        f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">{inline("A1", "x")}</row>'
        "</sheetData></worksheet>"
    )


def test_new_cells_take_the_header_style_or_their_column_style(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "s.xlsx", [["URL", "Job ID"], ["a", "j1"]])
    book = openpyxl.load_workbook(path)
    ws = book["Companies"]
    for cell in ws[1]:
        cell.font = Font(bold=True)
    book.save(path)
    sheet = XlsxSheet(path)
    sheet.ensure_columns(["Status"])
    sheet.write_by_job_id({"j1": {"Status": "done"}})
    ws = loaded(path)
    assert ws["C1"].value == "Status" and ws["C1"].font.bold  # like the headers beside it
    assert ws["C2"].value == "done" and not ws["C2"].font.bold


def test_random_writes_land_exactly_where_meant_and_nowhere_else(tmp_path: Path) -> None:
    rng = random.Random(20240501)
    columns = ["URL", "Job ID", "Notes", "Amount", "Status", "Name", "Score"]
    rows: list[list[Any]] = [columns]
    for i in range(40):
        rows.append(
            [
                f"https://{i}.example",
                f"j{i}",
                rng.choice([None, f"note {i}", "=1+1"]),
                rng.choice([None, i * 1.5, i]),
                rng.choice([None, "queued"]),
                None,
                None,
            ]
        )
    path = make_workbook(tmp_path / "random.xlsx", rows)
    book = openpyxl.load_workbook(path)
    for cell in book["Companies"]["C"]:
        cell.font = Font(italic=True)
    book.save(path)
    expected = {
        (r, c): loaded(path).cell(r, c).value
        for r in range(1, 42)
        for c in range(1, len(columns) + 3)
    }
    sheet = XlsxSheet(path)
    written = ["Status", "Name", "Score", "Extra", "Notes"]
    for _round in range(6):
        updates: dict[str, dict[str, Any]] = {}
        for i in rng.sample(range(40), 12):
            updates[f"j{i}"] = {
                column: rng.choice(["done", "-x", "", 7, 2.25, "  pad  ", "=SUM(A1)"])
                for column in rng.sample(written, 3)
            }
        sheet.write_by_job_id(updates)
        header = [c.value for c in loaded(path)[1]]
        for job, values in updates.items():
            for column, value in values.items():
                cell = (int(job[1:]) + 2, header.index(column) + 1)
                expected[cell] = None if value == "" else value
        if "Extra" in header:
            expected[(1, header.index("Extra") + 1)] = "Extra"
        ws = loaded(path)
        actual = {key: ws.cell(*key).value for key in expected}
        assert actual == expected
        assert all(ws.cell(r, 3).font.italic for r in range(1, 42))  # styles kept
