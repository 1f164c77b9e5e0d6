"""CsvSheet against real files: what only CSV has (dialects, bytes kept, lock files, safety).

What every backend promises is in test_sheet_contract.py."""

from __future__ import annotations

import csv
import os
import stat
import threading
import tracemalloc
from pathlib import Path

import pytest

from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.errors import BadSheet, MissingColumn, SheetLocked, SheetNotFound
from sheets_integration.sheet import Sheet, Table


def write_csv(path: Path, rows: list[list[str]], **fmt: str) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        csv.writer(stream, lineterminator=fmt.get("lineterminator", "\r\n")).writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as stream:
        return list(csv.reader(stream))


def rows_by_url(path: Path) -> dict[str, dict[str, str]]:
    header, *rows = read_csv(path)
    return {r[0]: dict(zip(header, r, strict=False)) for r in rows if r}


@pytest.fixture
def companies(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "companies.csv",
        [
            ["URL", "Name", "Notes"],
            ["https://a.example", "Alpha", ""],
            ["https://b.example", "Beta", "call back"],
            ["https://c.example", "Gamma", ""],
        ],
    )


def assign_all(sheet: CsvSheet) -> Table:
    """Ensure the bookkeeping columns and give rows i a job id "job-<url letter>"."""
    table = sheet.ensure_columns(["Status", "Job ID"])
    ids = {i: "job-" + table.cell(i, "URL")[8] for i in range(len(table.rows))}
    expected = {i: {"URL": table.cell(i, "URL")} for i in ids}
    assert sheet.assign_job_ids(ids, expected) == set()
    return sheet.read()


def test_is_a_sheet(companies: Path) -> None:
    sheet = CsvSheet(companies)
    assert isinstance(sheet, Sheet)
    assert sheet.name == "companies.csv"


def test_ensure_columns_with_nothing_to_add_does_not_rewrite_the_file(companies: Path) -> None:
    sheet = CsvSheet(companies)
    sheet.ensure_columns(["Job ID", "STATUS"])  # the contract: test_sheet_contract.py
    before = companies.read_bytes()
    sheet.ensure_columns(["job id", "Status"])
    assert companies.read_bytes() == before  # nothing to add: the file is not rewritten


def test_formula_strings_are_escaped(companies: Path) -> None:
    sheet = CsvSheet(companies)
    assign_all(sheet)
    nasty = {
        "A": "=1+1",
        "B": '=HYPERLINK("http://x","y")',
        "C": "+cmd|' /C calc'!A0",
        "D": "@SUM(A1)",
        "E": "-2+3",
        "F": "\t=1",
        "G": "-12.5",
        "H": "failed: resolve: connection refused",
    }
    sheet.write_by_job_id({"job-a": nasty})
    row = rows_by_url(companies)["https://a.example"]
    assert row["A"] == "'=1+1"
    assert row["B"] == '\'=HYPERLINK("http://x","y")'
    assert row["C"] == "'+cmd|' /C calc'!A0"
    assert row["D"] == "'@SUM(A1)"
    assert row["E"] == "'-2+3"
    assert row["F"] == "'\t=1"
    assert row["G"] == "-12.5"  # a plain number cannot carry a formula
    assert row["H"] == "failed: resolve: connection refused"


def test_leading_zeros_and_unicode_round_trip(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv", [["Zip", "Name", "Job ID"], ["00123", "Zoë Ørsted 東京", "j1"]]
    )
    sheet = CsvSheet(path)
    sheet.write_by_job_id({"j1": {"Status": "ünïcødé ✓ 🚀"}})
    table = sheet.read()
    assert table.row_dict(0) == {
        "Zip": "00123",
        "Name": "Zoë Ørsted 東京",
        "Job ID": "j1",
        "Status": "ünïcødé ✓ 🚀",
    }


def test_untouched_records_keep_their_bytes(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    raw = (
        '"URL","Name","Job ID"\r\n'
        '"https://a.example","A ""quoted"" name","j1"\r\n'
        "\r\n"
        '"https://b.example","multi\nline","j2"\r\n'
        "https://c.example,,j3,,,\r\n"
    )
    path.write_bytes(raw.encode())
    CsvSheet(path).write_by_job_id({"j2": {"Name": "B"}})
    lines = path.read_bytes().decode().split("\r\n")
    assert lines[0] == '"URL","Name","Job ID"'
    assert lines[1] == '"https://a.example","A ""quoted"" name","j1"'
    assert lines[2] == ""  # an empty row stays empty
    assert lines[3] == '"https://b.example","B","j2"'  # the file's all-quoted style
    assert lines[4] == "https://c.example,,j3,,,"  # trailing empty cells kept
    assert lines[5] == ""


def test_a_written_short_row_gets_a_field_for_every_column(tmp_path: Path) -> None:
    # Readers that map fields to the header (csv.DictReader, pandas) must not meet short rows.
    path = tmp_path / "short.csv"
    path.write_bytes(b"URL,Job ID,Status,Name,Score\nhttps://a,j1\nhttps://b,j2\n")
    CsvSheet(path).write_by_job_id({"j1": {"Status": "failed: resolve: HTTP 404"}})
    assert path.read_bytes() == (
        b"URL,Job ID,Status,Name,Score\nhttps://a,j1,failed: resolve: HTTP 404,,\nhttps://b,j2\n"
    )
    with path.open(newline="") as f:
        assert next(csv.DictReader(f))["Score"] == ""


def test_dialect_semicolon_lf_and_bom_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffURL;Name;Job ID\nhttps://a.example;Ä, Inc;j1\n".encode())
    sheet = CsvSheet(path)
    assert sheet.read().header == ["URL", "Name", "Job ID"]
    sheet.write_by_job_id({"j1": {"Status": "a;b"}})
    assert path.read_bytes() == (
        '\ufeffURL;Name;Job ID;Status\nhttps://a.example;Ä, Inc;j1;"a;b"\n'.encode()
    )


def test_excel_sep_line_is_honoured_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "sep.csv"
    path.write_bytes(b"sep=|\r\nURL|Job ID\r\nhttps://a.example|j1\r\n")
    sheet = CsvSheet(path)
    assert sheet.read().header == ["URL", "Job ID"]
    sheet.write_by_job_id({"j1": {"Status": "ok"}})
    assert path.read_bytes() == b"sep=|\r\nURL|Job ID|Status\r\nhttps://a.example|j1|ok\r\n"


def test_no_newline_at_end_and_tab_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b"URL\tJob ID\nhttps://a.example\tj1")
    CsvSheet(path).write_by_job_id({"j1": {"Status": "ok"}})
    assert path.read_bytes() == b"URL\tJob ID\tStatus\nhttps://a.example\tj1\tok"


def test_embedded_newlines_in_values_are_quoted(companies: Path) -> None:
    sheet = CsvSheet(companies)
    assign_all(sheet)
    sheet.write_by_job_id({"job-a": {"Notes": "line 1\rline 2\nline 3"}})
    assert sheet.read().cell(0, "Notes") == "line 1\rline 2\nline 3"
    assert len(sheet.read().rows) == 3


def test_new_columns_go_after_unlabelled_data(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "w.csv", [["URL", "Job ID"], ["https://a", "j1", "", "keep me"]])
    CsvSheet(path).write_by_job_id({"j1": {"Status": "ok"}})
    assert read_csv(path) == [
        ["URL", "Job ID", "", "", "Status"],
        ["https://a", "j1", "", "keep me", "ok"],
    ]


def test_write_keeps_mode_and_leaves_no_temp_files(companies: Path) -> None:
    os.chmod(companies, 0o640)
    sheet = CsvSheet(companies)
    assign_all(sheet)
    sheet.write_by_job_id({"job-a": {"Status": "ok"}})
    assert stat.S_IMODE(companies.stat().st_mode) == 0o640
    assert sorted(p.name for p in companies.parent.iterdir()) == ["companies.csv"]


def test_write_through_a_symlink_updates_the_target(companies: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.csv"
    link.symlink_to(companies)
    CsvSheet(link).ensure_columns(["Status"])
    assert link.is_symlink()
    assert read_csv(companies)[0][-1] == "Status"


def test_missing_job_id_column_is_a_clear_error(companies: Path) -> None:
    with pytest.raises(MissingColumn, match=r"'Job ID' not found in companies\.csv") as caught:
        CsvSheet(companies).write_by_job_id({"j1": {"Status": "x"}})
    assert caught.value.header == ["URL", "Name", "Notes"]


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(SheetNotFound, match=r"nope\.csv"):
        CsvSheet(tmp_path / "nope.csv").read()
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(BadSheet, match="header row is empty"):
        CsvSheet(empty).read()
    latin = tmp_path / "latin.csv"
    latin.write_bytes("URL,Name\nx,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(BadSheet, match=r"not UTF-8 text .* --encoding cp1252"):
        CsvSheet(latin).read()
    assert CsvSheet(latin, encoding="cp1252").read().rows == [["x", "Café"]]


def test_office_lock_file_blocks_writes(companies: Path) -> None:
    lock = companies.with_name(".~lock.companies.csv#")
    lock.write_text(",operator,host,01.01.2025 10:00,file:///x;")
    sheet = CsvSheet(companies)
    with pytest.raises(SheetLocked, match="close it"):
        sheet.ensure_columns(["Status"])
    assert sheet.read().header == ["URL", "Name", "Notes"]  # reading still works
    assert CsvSheet(companies, respect_lock_files=False).ensure_columns(["Status"])


def test_concurrent_writers_in_threads_do_not_lose_updates(tmp_path: Path) -> None:
    count = 40
    path = write_csv(
        tmp_path / "many.csv",
        [["URL", "Job ID"], *[[f"https://{i}", f"j{i}"] for i in range(count)]],
    )

    def work(i: int) -> None:
        CsvSheet(path).write_by_job_id({f"j{i}": {"Status": f"done {i}"}})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    table = CsvSheet(path).read()
    assert [table.cell(i, "Status") for i in range(count)] == [f"done {i}" for i in range(count)]


def test_fifty_thousand_rows_read_and_write_with_modest_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as stream:
        stream.write("URL,Name,Job ID,Status\r\n")
        for i in range(50_000):
            stream.write(f"https://example{i}.com/,Company {i},job-{i},\r\n")
    sheet = CsvSheet(path)
    tracemalloc.start()
    try:
        assert len(sheet.read().rows) == 50_000
        result = sheet.write_by_job_id(
            {f"job-{i}": {"Status": "succeeded"} for i in range(0, 50_000, 10)}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.cells == 5_000
    assert peak < 150 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"
    table = sheet.read()
    assert table.cell(49_990, "Status") == "succeeded"
    assert table.cell(49_999, "Status") == ""
