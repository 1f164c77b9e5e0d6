"""XlsxSheet: numbers as numbers, merged cells, hyperlink targets, broken packages, and the
package details a part-level edit must get right (shared formulas, the calculation chain,
prefixed or reference-less XML, escapes)."""

from __future__ import annotations

import random
import shutil
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.styles import Font
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from sheets_integration.errors import BadSheet
from sheets_integration.xlsx_sheet import XlsxSheet
from sheets_integration.xlsx_splice import splice
from sheets_integration.xlsx_styles import Styles
from tests.support.cli import sheetbatch

FIXTURE = Path(__file__).parent / "fixtures" / "libreoffice_companies.xlsx"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def make_workbook(path: Path, rows: list[list[Any]], title: str = "Companies") -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    sheet.title = title
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def loaded(path: Path, title: str = "Companies", *, data_only: bool = False) -> Worksheet:
    sheet = openpyxl.load_workbook(path, data_only=data_only)[title]
    assert isinstance(sheet, Worksheet)
    return sheet


def part(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name).decode()


def hand_made(path: Path, sheet_xml: str, **extra: str) -> Path:
    """A workbook written part by part, as other programs write them (`extra`: part -> XML)."""
    overrides = {
        "/xl/workbook.xml": f"{OFFICE}.sheet.main+xml",
        "/xl/worksheets/sheet1.xml": f"{OFFICE}.worksheet+xml",
    }
    workbook_rels = [
        f'<Relationship Id="rId1" Type="{RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
    ]
    for number, (kind, content_type) in enumerate(
        [("calcChain", "calcChain"), ("sharedStrings", "sharedStrings")], start=2
    ):
        if f"xl/{kind}.xml" in extra:
            overrides[f"/xl/{kind}.xml"] = f"{OFFICE}.{content_type}+xml"
            workbook_rels.append(
                f'<Relationship Id="rId{number}" Type="{RELS}/{kind}" Target="{kind}.xml"/>'
            )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            + "".join(f'<Override PartName="{n}" ContentType="{t}"/>' for n, t in overrides.items())
            + "</Types>"
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE_RELS}">'
            f'<Relationship Id="rId1" Type="{RELS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{RELS}">'
            '<sheets><sheet name="Companies" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE_RELS}">'
            + "".join(workbook_rels)
            + "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": sheet_xml,
        **extra,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


def inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


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


# --- what a part-level edit must get right -----------------------------------------------------


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
