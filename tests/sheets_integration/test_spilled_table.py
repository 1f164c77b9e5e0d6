"""A CSV sheet read as a stream into rows spilled to disk (`SpilledRows`): every row reads
back exactly as the parsed document holds it, `ensure_columns` rewrites the header alone,
an in-place save during a read or a write is noticed as before, and a big sheet's rows are
not held in Python's heap."""

from __future__ import annotations

import codecs
import csv
import io
import shutil
import tempfile
import tracemalloc
from pathlib import Path
from typing import BinaryIO

import pytest

from sheets_integration.csv_records import read_table
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.csv_stream import StreamedColumns
from sheets_integration.errors import BadSheet
from sheets_integration.file_sheet import FileSheet
from sheets_integration.file_versions import FileVersions
from sheets_integration.sheet import Table
from sheets_integration.spilled_rows import SpilledRows
from sheets_integration.stream_rewrite import stream_read, stream_rewrite

HEADER = "URL,Name,Job ID,Status"

FILES = {
    "plain": f"{HEADER}\r\nhttps://a,Alpha,j1,\r\nhttps://b,Beta,j2,queued\r\n",
    "bom_semicolon_lf": "\ufeffURL;Name;Job ID;Status\nhttps://a;Alpha;j1;\nx;y;j2;\n",
    "sep_line": "sep=;\r\nURL;Name;Job ID;Status\r\nhttps://a;Alpha;j1;\r\n",
    "quote_all": '"URL","Name","Job ID","Status"\r\n"https://a","Al, pha","j1",""\r\n',
    "quotes_in_cells": f'{HEADER}\r\nhttps://a,"Say ""hi""",j1,\r\nb,"""",j2,\r\n',
    "newlines_in_cells": f'{HEADER}\r\nhttps://a,"Al\r\npha",j1,\r\nb,"B\neta\rx",j2,\r\n',
    "ragged_rows": f"{HEADER},\r\nhttps://a\r\n\r\nb,Beta,j2,,extra,more\r\n,,,\r\n",
    "unicode": f"{HEADER}\r\nhttps://ä.example,Zürich 北京 🚀,j1,\r\nb,\u2028sep\u2029,j2,\r\n",
    "no_final_newline": f"{HEADER}\r\nhttps://a,Alpha,j1,\r\nb,Beta,j2,",
    "cr_only": "URL,Name\rhttps://a,Alpha\rb,Beta\r",
}


def parsed_table(path: Path, encoding: str = "utf-8-sig") -> Table:
    """The table the parsed document holds (the whole-file path)."""
    return FileSheet.read(CsvSheet(path, encoding))


def tricky_rows(count: int) -> list[list[str]]:
    """Rows of every kind a cell can hold, some shorter or longer than the header."""
    kinds = [
        lambda i: [f"https://c{i}.example", f'Say "hi" {i}', f"j{i}", ""],
        lambda i: [f"https://c{i}.example", f"line one\r\nline two {i}", f"j{i}"],
        lambda i: [f"c{i}", f"Zürich 北京 🚀 {i}", "", "", "past the header"],
        lambda i: [f"c{i}", "\x00nul and\ttab", f"j{i}", "=SUM(A1)"],
        lambda i: [],
        lambda i: [f"c{i}"],
        lambda i: ["", "", "", ""],
        lambda i: [f"c{i}", "a,b;c|d", "\ufeff", " spaces "],
    ]
    return [kinds[i % len(kinds)](i) for i in range(count)]


def write_rows(path: Path, rows: list[list[str]], *, bom: bool, terminator: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerow(HEADER.split(","))
    writer.writerows(rows)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + buffer.getvalue().encode("utf-8"))


def test_spilled_rows_read_back_every_row_exactly_past_the_memory_limit() -> None:
    rows = tricky_rows(2_000)
    spilled = SpilledRows(rows[:1_000], memory_limit=256)  # most rows on disk
    spilled.extend(rows[1_000:])
    assert len(spilled) == 2_000
    assert [spilled[i] for i in range(2_000)] == rows  # by index, through the cache
    assert [spilled[i] for i in range(1_999, -1, -7)] == rows[::-7]  # out of order
    assert list(spilled) == rows  # iteration, past the cache
    assert spilled[-1] == rows[-1] and spilled[10:20] == rows[10:20]
    assert spilled == rows and spilled != rows[:-1]
    with pytest.raises(IndexError):
        spilled[2_000]


def test_spilled_rows_hold_next_to_nothing_per_row_in_memory() -> None:
    """What stays in memory for rows on disk is per block, not per row: a 500,000-row
    sheet's index is some KB (an offset a row took 4 MB)."""
    spilled = SpilledRows(memory_limit=1 << 16)
    spilled.append(["warm", "up"])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        spilled.extend([f"Company {i}", f"https://c{i}.example"] for i in range(200_000))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 200_000  # bytes: the in-memory tail (64 KB) and the block index
    assert spilled[199_999] == ["Company 199998", "https://c199998.example"]
    assert spilled[1] == ["Company 0", "https://c0.example"] and len(spilled) == 200_001


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_streamed_read_holds_what_the_parsed_document_holds(tmp_path: Path, name: str) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(FILES[name].encode("utf-8"))
    got = CsvSheet(path).read()
    want = parsed_table(path)
    assert isinstance(got.rows, SpilledRows)  # the stream read it, not the parsed path
    assert got.header == want.header and got.rows == want.rows
    assert len(got.rows) == len(want.rows) > 0


@pytest.mark.parametrize(("bom", "terminator"), [(True, "\r\n"), (False, "\n")])
def test_a_big_sheet_spilled_to_disk_reads_back_every_row_exactly(
    tmp_path: Path, bom: bool, terminator: str
) -> None:
    path = tmp_path / "big.csv"
    rows = tricky_rows(30_000)  # 1.1 MB of rows: past the MiB kept in memory
    write_rows(path, rows, bom=bom, terminator=terminator)
    table = CsvSheet(path).read()
    assert table.header == HEADER.split(",")
    assert table.rows == rows
    assert [table.rows[i] for i in (29_999, 0, 15_001, 3)] == [
        rows[i] for i in (29_999, 0, 15_001, 3)
    ]
    assert table.cell(29_998, "Name") == rows[29_998][1]
    assert table.cell(29_997, "Status") == ""  # a short row's missing cell


def test_a_file_in_another_encoding_streams_too(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("Name,City\r\nCafé,Zürich\r\n".encode("cp1252"))
    table = CsvSheet(path, encoding="cp1252").read()
    assert isinstance(table.rows, SpilledRows)
    assert table.rows == [["Café", "Zürich"]]


def test_a_file_the_stream_cannot_read_gets_the_parsed_documents_error(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"Name,City\r\nCaf\xe9,Z\r\n")
    with pytest.raises(BadSheet, match=r"not UTF-8 text \(byte 14\)"):
        CsvSheet(path).read()
    path.write_bytes(b",,\r\nAcme,x\r\n")
    with pytest.raises(BadSheet, match="the header row is empty"):
        CsvSheet(path).read()


@pytest.mark.parametrize("name", sorted(FILES))
def test_streamed_ensure_columns_writes_what_the_parsed_document_writes(
    tmp_path: Path, name: str
) -> None:
    streamed = tmp_path / "streamed.csv"
    streamed.write_bytes(FILES[name].encode("utf-8"))
    parsed = tmp_path / "parsed.csv"
    shutil.copyfile(streamed, parsed)
    columns = ["Status", "Updated", "=Error"]
    got = CsvSheet(streamed).ensure_columns(columns)
    want = FileSheet.ensure_columns(CsvSheet(parsed), columns)
    assert isinstance(got.rows, SpilledRows)
    assert got.header == want.header and got.rows == want.rows
    assert streamed.read_bytes() == parsed.read_bytes()
    assert got.index("Updated") is not None and "'=Error" in got.header  # escaped


def test_ensure_columns_places_new_columns_after_the_used_area_and_copies_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.csv"
    body = 'https://a,"Al\r\npha"\r\nb,Beta,,kept by hand\r\n' * 20_000
    path.write_bytes(f"\ufeffURL,Name\r\n{body}".encode())
    table = CsvSheet(path).ensure_columns(["Status", "Name"])
    # Row 3 uses four columns: the new one goes to the fifth, never over the note.
    assert table.header == ["URL", "Name", "", "", "Status"]
    assert path.read_bytes() == f"\ufeffURL,Name,,,Status\r\n{body}".encode()
    assert table.rows[39_999] == ["b", "Beta", "", "kept by hand"]
    before = path.stat()
    assert CsvSheet(path).ensure_columns(["status"]).header == table.header
    assert path.stat().st_ino == before.st_ino  # nothing to add: the file is left alone


def test_a_save_by_another_program_during_ensure_columns_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"URL,Name\r\nhttps://a,Alpha\r\n")
    columns = StreamedColumns(["Status"])
    saves = []

    def edit(source: BinaryIO, target: BinaryIO) -> tuple[bool, Table]:
        outcome = columns(source, target)
        if not saves:  # the operator saves while our new version is being written
            saves.append(1)
            path.write_bytes(b"URL,Name\r\nhttps://new,New row\r\nhttps://a,Alpha\r\n")
        return outcome

    table = stream_rewrite(path, "c.csv", edit)
    assert path.read_bytes() == b"URL,Name,Status\r\nhttps://new,New row\r\nhttps://a,Alpha\r\n"
    assert table.rows == [["https://new", "New row"], ["https://a", "Alpha"]]


def test_a_save_in_place_during_a_read_is_read_again_and_counts_as_an_edit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"URL,Name\r\nhttps://a,Alpha\r\n")
    versions = FileVersions()
    versions.wrote(path.stat())  # as if this process had written it last
    reads = []

    def read(source: BinaryIO) -> Table:
        table = read_table(source)
        if not reads:  # another program saves in place (same file) while we read
            reads.append(1)
            with path.open("r+b") as other:
                other.write(b"URL,Name\r\nhttps://b,Bravo,more\r\n")
        return table

    table = stream_read(path, "c.csv", read, versions=versions)
    assert table.rows == [["https://b", "Bravo", "more"]]
    assert versions.edited_by_others()


def test_a_read_tells_whether_another_program_saved_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"URL,Job ID\r\nhttps://a,j1\r\n")
    sheet = CsvSheet(path)
    sheet.ensure_columns(["Status"])
    assert sheet.read().rows == [["https://a", "j1"]]
    assert not sheet.edited_by_others()  # only our own writes so far
    path.write_bytes(b"URL,Job ID,Status\r\nhttps://a,j1,queued\r\n")  # an old copy saved
    assert sheet.read().cell(0, "Status") == "queued"
    assert sheet.edited_by_others()


def test_reading_a_fifty_thousand_row_sheet_keeps_its_rows_out_of_the_heap(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as stream:
        stream.write("Company,Website,City,Owner,Notes\r\n")
        for i in range(50_000):
            stream.write(f"Company {i},https://company{i}.example,Berlin,owner{i % 97},lead\r\n")
    sheet = CsvSheet(path)
    tracemalloc.start()
    try:
        table = sheet.read()
        _, read_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        table = sheet.ensure_columns(["Status", "Job ID"])
        held, columns_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Held as lists, the rows alone take ~25 MB; reading them held ~33 MB at its peak and
    # ensure_columns (the whole file parsed) ~50 MB.
    assert read_peak < 8e6, f"read: peak {read_peak / 1e6:.1f} MB"
    assert columns_peak < 8e6, f"ensure_columns: peak {columns_peak / 1e6:.1f} MB"
    assert held < 4e6, f"held {held / 1e6:.1f} MB"
    assert len(table.rows) == 50_000
    assert table.row_dict(49_999)["Company"] == "Company 49999"


def test_no_room_for_a_big_sheets_rows_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    write_rows(path, tricky_rows(50_000), bom=False, terminator="\r\n")  # past 1 MiB
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    with pytest.raises(BadSheet, match=r"big\.csv.*reading it failed.*TMPDIR"):
        CsvSheet(path).read()
