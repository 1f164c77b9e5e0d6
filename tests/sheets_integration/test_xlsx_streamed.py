"""Big-sheet writes of an .xlsx workbook: every piece of a flush in one pass over the file.

The LibreOffice fixture (formulas with cached results, merges, shared strings, a chart,
comments, a second and third worksheet) gets job ids, then a flush of several pieces;
everything outside the cells written stays as it was, and the file is opened and replaced
once for the whole flush (counted by the kernel: inotify events on its directory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import struct
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from sheets_integration.planned import PlannedJobs
from sheets_integration.sheet import Piece, RowsAsRead
from sheets_integration.xlsx_sheet import XlsxSheet

FIXTURE = Path(__file__).parent / "fixtures" / "libreoffice_companies.xlsx"
WORKSHEET = "xl/worksheets/sheet1.xml"
_IN_OPEN, _IN_MOVED_TO = 0x20, 0x80


class DirectoryEvents:
    """Opens and renames-into of files in one directory, as the kernel reports them."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0:
            pytest.skip("inotify is not available")
        if libc.inotify_add_watch(self.fd, bytes(directory), _IN_OPEN | _IN_MOVED_TO) < 0:
            pytest.skip("inotify cannot watch the directory")

    def read(self) -> list[tuple[int, str]]:
        """(mask, file name) of each event since the last read."""
        events: list[tuple[int, str]] = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return events
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, size = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + size].rstrip(b"\0").decode()
                events.append((mask, name))
                offset += 16 + size

    def close(self) -> None:
        os.close(self.fd)


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def outside_sheet_data(xml: bytes) -> bytes:
    xml = re.sub(rb"<sheetData>.*</sheetData>", b"<sheetData/>", xml, flags=re.DOTALL)
    return re.sub(rb'<dimension ref="[^"]*"/>', b"<dimension/>", xml)


def values(path: Path) -> dict[tuple[str, str], object]:
    """Every cell's formula or value and cached result, in every worksheet."""
    formulas = openpyxl.load_workbook(path)
    cached = openpyxl.load_workbook(path, data_only=True)
    found: dict[tuple[str, str], object] = {}
    for title in formulas.sheetnames:
        for row in formulas[title].iter_rows():
            for cell in row:
                other = cached[title][cell.coordinate]
                found[(title, cell.coordinate)] = (
                    cell.value,
                    other.value,
                    cell.number_format,
                    repr(cell.font),
                    repr(cell.fill),
                )
    return found


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[XlsxSheet, list[str]]:
    """The fixture with Status and Job ID columns and an id in each data row."""
    copy = tmp_path / "companies.xlsx"
    shutil.copyfile(FIXTURE, copy)
    sheet = XlsxSheet(copy)
    table = sheet.ensure_columns(["Status", "Job ID"])
    rows = [i for i, values in enumerate(table.rows) if any(values)]
    assignments = {row: f"job-{row}" for row in rows}
    assert sheet.assign_job_ids(assignments, {}) == set()
    return sheet, list(assignments.values())


def test_a_flush_of_many_pieces_keeps_everything_else_and_rewrites_the_file_once(
    prepared: tuple[XlsxSheet, list[str]], tmp_path: Path
) -> None:
    sheet, ids = prepared
    before_parts, before_values = parts(sheet.path), values(sheet.path)
    pieces: list[Piece] = [({job_id: {"Status": f"done {job_id}"}}, ()) for job_id in ids[:-1]]
    # The last piece fills only an empty cell; a formula-like text stays text.
    pieces.append(({ids[-1]: {"Status": "=1+1"}}, ("Status",)))
    pieces.append(({"job-gone": {"Status": "x"}}, ()))
    events = DirectoryEvents(tmp_path)
    consumed: list[int] = []

    def given() -> Iterator[Piece]:
        for number, piece in enumerate(pieces):
            consumed.append(number)
            yield piece

    try:
        result = sheet.write_pieces(given())
        seen = events.read()
    finally:
        events.close()

    assert consumed == list(range(len(pieces)))
    assert result.missing == {"job-gone"}
    assert result.cells == len(ids)
    name = sheet.path.name
    assert sum(1 for mask, file in seen if mask & _IN_OPEN and file == name) == 1
    assert sum(1 for mask, file in seen if mask & _IN_MOVED_TO and file == name) == 1

    table = sheet.read()
    status = table.index("Status")
    assert status is not None
    by_id = {values[table.index("Job ID") or 0]: values for values in table.rows if values}
    for job_id in ids[:-1]:
        assert by_id[job_id][status] == f"done {job_id}"
    assert by_id[ids[-1]][status] == "=1+1"
    cell = openpyxl.load_workbook(sheet.path).worksheets[0]
    assert all(c.data_type != "f" for row in cell.iter_rows() for c in row if c.value == "=1+1")

    after_parts, after_values = parts(sheet.path), values(sheet.path)
    assert list(after_parts) == list(before_parts)
    changed = {WORKSHEET, "xl/styles.xml", "xl/workbook.xml"}
    assert {k: v for k, v in after_parts.items() if k not in changed} == {
        k: v for k, v in before_parts.items() if k not in changed
    }
    assert outside_sheet_data(after_parts[WORKSHEET]) == outside_sheet_data(before_parts[WORKSHEET])
    letter = openpyxl.utils.get_column_letter(status + 1)
    first = openpyxl.load_workbook(sheet.path).sheetnames[0]
    kept = {
        key: value
        for key, value in after_values.items()
        if not (key[0] == first and re.fullmatch(letter + r"\d+", key[1]))
    }
    assert kept == {
        key: value
        for key, value in before_values.items()
        if not (key[0] == first and re.fullmatch(letter + r"\d+", key[1]))
    }


def test_a_fill_only_piece_keeps_an_operators_value(
    prepared: tuple[XlsxSheet, list[str]],
) -> None:
    sheet, ids = prepared
    sheet.write_by_job_id({ids[0]: {"Status": "mine"}})
    result = sheet.write_pieces(
        [({ids[0]: {"Status": "ours"}, ids[1]: {"Status": "ours"}}, ("Status",))]
    )
    assert result.kept == 1 and result.cells == 1
    table = sheet.read()
    job, status = table.index("Job ID"), table.index("Status")
    assert job is not None and status is not None
    found = {values[job]: values[status] for values in table.rows if len(values) > job}
    assert found[ids[0]] == "mine" and found[ids[1]] == "ours"


def _assignment_peak(directory: Path, rows: int) -> int:
    """Peak bytes Python allocates while job ids go into every row of a `rows`-row
    workbook, as `sheetbatch run` assigns them (the ids of `PlannedJobs`, by row)."""
    path = directory / f"leads-{rows}.xlsx"
    book = openpyxl.Workbook(write_only=True)
    leads = book.create_sheet("Leads")
    leads.append(["Company", "Website", "Job ID"])
    for i in range(rows):
        leads.append([f"Company {i}", f"https://company{i}.example"])
    book.save(path)
    sheet = XlsxSheet(path)
    table = sheet.read()
    pending = PlannedJobs(table, range(rows), {"company": "Company"}).by_row()
    expected = RowsAsRead(table, pending, ["Company", "Website", "Job ID"])
    tracemalloc.start()
    try:
        assert sheet.assign_job_ids(pending, expected) == set()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    written = sheet.read()
    assert [written.cell(row, "Job ID") for row in (0, rows - 1)] == [pending[0], pending[rows - 1]]
    return peak


def test_writing_job_ids_into_a_big_workbook_holds_next_to_nothing_per_row(
    tmp_path: Path,
) -> None:
    # Growth per row from 4,000 to 16,000 rows: ~150 bytes (the compact index of the ids
    # and of the rows accepted, and the id index's sort of its first 16,384 ids, which
    # stops growing there); a list of a planned cell per row, sorted, made it ~360.
    small, big = _assignment_peak(tmp_path, 4_000), _assignment_peak(tmp_path, 16_000)
    assert (big - small) / 12_000 < 250
