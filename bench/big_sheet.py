"""Big sheets: peak RSS, rows/s, store bytes per row and final-flush time per sheet size.

`sheetbatch run` on generated sheets of each size (`--rows 10000,100000,500000`; CSV by
default, `--format xlsx` for a workbook, `--format google` for a Google Sheet served by the
Sheets stand-in in this process, which gspread in the child talks to; the child's peak RSS
is sheetbatch's alone) with the `fast` pipeline (no network I/O), so the
figures measure sheetbatch itself. The 10,000-row run (the first size) is the baseline: each
larger size reports its ratios to it (issue 14's targets: peak RSS ≤ 300 MB and ≤ 1.3× the
baseline's, rows/s ≥ 0.9× the baseline's, ≤ 1.5 KB of store per row). Prints one JSON line.

The final flush is measured from the batch's `finished` time in the store to the process's
exit: what the run spends writing the sheet after the last row is done.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

COLUMNS = ["Company", "Website", "City", "Owner", "Notes"]


def write_sheet(path: Path, rows: int) -> None:
    """A sheet of `rows` realistic rows (five operator columns)."""
    values = (
        [f"Company {i}", f"https://company{i}.example", "Berlin", f"owner{i % 97}", "lead"]
        for i in range(rows)
    )
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(COLUMNS)
            out.writerows(values)
        return
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Leads")
    sheet.append(COLUMNS)
    for row in values:
        sheet.append(row)
    book.save(path)


class GoogleSheets:
    """The Sheets stand-in, running in this process, with a service account for the child."""

    ACCOUNT = "bench@standin-project.iam.gserviceaccount.com"

    def __init__(self, workdir: Path) -> None:
        from gsheets_standin import StandIn
        from gsheets_standin._auth import generate_service_account_key

        self.standin = StandIn().__enter__()
        key = self.standin.register_service_account(
            generate_service_account_key(self.ACCOUNT, self.standin.token_url)
        )
        self.key_file = workdir / "sa.json"
        self.key_file.write_text(json.dumps(key.info))

    def sheet(self, rows: int) -> str:
        """A new spreadsheet of `rows` rows; its key."""
        values = [
            COLUMNS,
            *(
                [f"Company {i}", f"https://company{i}.example", "Berlin", f"owner{i % 97}", "lead"]
                for i in range(rows)
            ),
        ]
        return str(
            self.standin.create_spreadsheet(
                {"Leads": values}, shared_with=[self.ACCOUNT], rows=rows + 10
            )
        )

    def close(self) -> None:
        self.standin.__exit__(None, None, None)


def run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, float, int]:
    """(peak RSS in MB, seconds, exit time as epoch seconds, exit code) of a child."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    _, status, usage = os.wait4(proc.pid, 0)
    ended = time.time()
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and proc.stderr is not None:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return usage.ru_maxrss / 1024, time.perf_counter() - started, ended, code


def store_bytes(db: Path) -> int:
    """The store's size on disk: the database and what its WAL still holds."""
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def finished_at(db: Path) -> float | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT finished FROM sb_batches ORDER BY created DESC LIMIT 1"
        ).fetchone()
    if row is None or row[0] is None:
        return None
    value = row[0]
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def measure(
    rows: int, fmt: str, concurrency: int, workdir: Path, google: GoogleSheets | None
) -> dict[str, Any]:
    sheet = workdir / f"big-{rows}.{fmt}"
    env: dict[str, str] = {}
    extra: list[str] = []
    if google is not None:
        spec = google.sheet(rows)
        google.standin.clear_log()
        env["SHEETBATCH_SHEETS_API_URL"] = google.standin.url
        extra = ["--credentials", str(google.key_file)]
    else:
        write_sheet(sheet, rows)
        spec = str(sheet)
    db = workdir / f"p-{rows}.db"
    rss, seconds, ended, code = run(
        [
            sys.executable,
            "-m",
            "sheetbatch",
            "run",
            spec,
            *extra,
            "--pipeline",
            "fast",
            "--db",
            f"sqlite:///{db}",
            "--json",
            "--concurrency",
            str(concurrency),
        ],
        workdir,
        env,
    )
    finished = finished_at(db)
    size = store_bytes(db)
    sheet.unlink(missing_ok=True)
    for part in db.parent.glob(db.name + "*"):
        part.unlink()
    figures: dict[str, Any] = {}
    if google is not None:
        # What the run cost of the credential's quota (60 reads and 60 writes a minute).
        figures["google_requests"] = {
            kind: google.standin.count(kind=kind) for kind in ("read", "write")
        }
        google.standin.clear_log()
    return {
        **figures,
        "rows": rows,
        "exit_code": code,
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds, 1),
        "peak_rss_mb": round(rss, 1),
        "store_bytes_per_row": round(size / rows),
        "final_flush_s": None if finished is None else round(max(0.0, ended - finished), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", default="10000,100000", help="sizes, comma-separated; the first is the baseline"
    )
    parser.add_argument("--format", choices=("csv", "xlsx", "google"), default="csv")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    sizes = [int(part) for part in args.rows.split(",") if part.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        base_rss, _, _, _ = run([sys.executable, "-c", "import sheetbatch.cli"], workdir)
        google = GoogleSheets(workdir) if args.format == "google" else None
        try:
            runs = [measure(n, args.format, args.concurrency, workdir, google) for n in sizes]
        finally:
            if google is not None:
                google.close()
    first = runs[0]
    for r in runs[1:]:
        r["rss_ratio"] = round(r["peak_rss_mb"] / first["peak_rss_mb"], 2)
        r["rows_per_s_ratio"] = round(r["rows_per_s"] / first["rows_per_s"], 2)
    largest = runs[-1]
    print(
        json.dumps(
            {
                "bench": "big_sheet",
                "format": args.format,
                "baseline_import_rss_mb": round(base_rss, 1),
                "runs": runs,
                "targets": {
                    "peak_rss_mb": 300,
                    "rss_ratio": 1.3,
                    "rows_per_s_ratio": 0.9,
                    "store_bytes_per_row": 1536,
                },
                "meets_targets": all(r["exit_code"] == 0 for r in runs)
                and largest["peak_rss_mb"] <= 300
                and largest.get("rss_ratio", 1.0) <= 1.3
                and largest.get("rows_per_s_ratio", 1.0) >= 0.9
                and largest["store_bytes_per_row"] <= 1536,
            }
        )
    )


if __name__ == "__main__":
    main()
