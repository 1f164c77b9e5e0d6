"""Peak RSS of `sheetbatch run` on a 50,000-row sheet with the fast (no I/O) pipeline.

Target ≤ 250 MB. The baseline measured in the same run is the same interpreter importing the
CLI and exiting (the fixed cost every run pays). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb(cmd: list[str], cwd: str) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit code) of a child process, read with wait4()."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sheet = Path(tmp) / "big.csv"
        with sheet.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Company", "Website"])
            for i in range(args.rows):
                writer.writerow([f"Company {i}", f"https://company{i}.example"])
        base_mb, _, _ = peak_rss_mb([sys.executable, "-c", "import sheetbatch.cli"], tmp)
        run_mb, seconds, code = peak_rss_mb(
            [
                sys.executable,
                "-m",
                "sheetbatch",
                "run",
                str(sheet),
                "--pipeline",
                "fast",
                "--db",
                f"sqlite:///{tmp}/p.db",
                "--json",
                "--concurrency",
                str(args.concurrency),
            ],
            tmp,
        )
    print(
        json.dumps(
            {
                "bench": "rss_50k",
                "rows": args.rows,
                "exit_code": code,
                "seconds": round(seconds, 1),
                "rows_per_s": round(args.rows / seconds, 1),
                "peak_rss_mb": round(run_mb, 1),
                "baseline_import_rss_mb": round(base_mb, 1),
                "target_mb": 250,
                "meets_target": run_mb <= 250 and code == 0,
            }
        )
    )


if __name__ == "__main__":
    main()
