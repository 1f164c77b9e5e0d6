"""XLSX flushes: sheetbatch's package edit vs an openpyxl load/save round trip.

A workbook of N rows (Company, Website, Notes, Status, Job ID, Name, Score; every row with
a job id) is flushed the way the sheet writer flushes: 200 rows spread over the sheet get
Status, Name and Score. `XlsxSheet.write_by_job_id` (read the file, locate the rows by
Job ID, splice the changed rows into the worksheet part, write the file atomically) is
timed beside the same flush done by loading the workbook with openpyxl, locating the rows,
setting the cells and saving it (what XlsxSheet did before), measured in the same run.
Prints one JSON line: median ms per flush for each size, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.worksheet.worksheet import Worksheet

from sheets_integration.xlsx_sheet import XlsxSheet

HEADER = ["Company", "Website", "Notes", "Status", "Job ID", "Name", "Score"]
CHANGED_ROWS = 200


def make_workbook(path: Path, rows: int) -> None:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Companies")
    sheet.append(HEADER)
    for i in range(rows):
        sheet.append(
            [f"Company {i}", f"https://c{i}.example", f"note {i}", "queued", f"j-{i:08d}", "", ""]
        )
    book.save(path)


def updates(rows: int, flush: int) -> dict[str, dict[str, Any]]:
    step = max(1, rows // CHANGED_ROWS)
    chosen = [(flush + i * step) % rows for i in range(CHANGED_ROWS)]
    return {
        f"j-{i:08d}": {"Status": "completed", "Name": f"COMPANY {i} #{flush}", "Score": i % 100}
        for i in chosen
    }


def package_flush(path: Path, changes: dict[str, dict[str, Any]]) -> float:
    started = time.perf_counter()
    result = XlsxSheet(path).write_by_job_id(changes)
    elapsed = time.perf_counter() - started
    assert not result.missing and result.cells == 3 * len(changes), result
    return elapsed


def openpyxl_flush(path: Path, changes: dict[str, dict[str, Any]]) -> float:
    started = time.perf_counter()
    book = openpyxl.load_workbook(path)
    sheet = book["Companies"]
    assert isinstance(sheet, Worksheet)
    header = [cell.value for cell in sheet[1]]
    job_column = header.index("Job ID")
    rows = {
        str(values[job_column]): number
        for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2)
    }
    for job_id, cells in changes.items():
        for column, value in cells.items():
            sheet.cell(rows[job_id], header.index(column) + 1).value = value
    book.save(path)
    return time.perf_counter() - started


def measure(rows: int, flushes: int, baseline_flushes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as temp:
        ours, theirs = Path(temp) / "ours.xlsx", Path(temp) / "openpyxl.xlsx"
        make_workbook(ours, rows)
        make_workbook(theirs, rows)
        package = [package_flush(ours, updates(rows, n)) for n in range(flushes)]
        baseline = [openpyxl_flush(theirs, updates(rows, n)) for n in range(baseline_flushes)]
        check = XlsxSheet(ours).read()
        assert check.cell(0, "Status") == "completed", check.rows[0]
        size = ours.stat().st_size
    ms, base_ms = statistics.median(package) * 1000, statistics.median(baseline) * 1000
    return {
        "rows": rows,
        "file_bytes": size,
        "package_ms_per_flush": round(ms, 1),
        "openpyxl_ms_per_flush": round(base_ms, 1),
        "speedup": round(base_ms / ms, 2),
        "flushes": flushes,
        "baseline_flushes": baseline_flushes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000", help="comma-separated sizes")
    parser.add_argument("--flushes", type=int, default=5)
    parser.add_argument("--baseline-flushes", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    results = [measure(rows, args.flushes, args.baseline_flushes) for rows in sizes]
    print(
        json.dumps(
            {
                "bench": "xlsx_write",
                "changed_rows_per_flush": CHANGED_ROWS,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
