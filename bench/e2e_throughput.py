"""Rows/s through the `company` pipeline against fixture sites with 100 ms latency per request.

At concurrency C, the limit is C ÷ (requests per row × latency): every worker always waiting
on exactly one request. Target: measured rows/s ≥ 0.8 × that limit. The baseline measured in
the same run is the bare fetch loop (the same number of requests on plain threads, no
pipeline, no store). The websites run in their own process, as real websites do.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from pipeline.registry import load_pipeline
from progress import open_store
from sheetbatch.config import Settings
from sheetbatch.service import services_for
from sheets_integration.batch import BatchProcessor, RunOptions
from sheets_integration.locate import open_sheet


class Sites:
    """`python -m sheetbatch.sites` in a child process."""

    def __init__(self, n: int, latency: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sheetbatch.sites",
                "--synthetic",
                str(n),
                "--latency",
                str(latency),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        served: dict[str, Any] = json.loads(self.proc.stdout.readline())
        self.urls: dict[str, str] = served["urls"]
        self.allow_hosts: list[str] = served["allow_hosts"]

    def stop(self) -> int:
        """Stop serving; the number of requests answered."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        hits = json.loads(self.proc.stdout.readline())["hits"]
        self.proc.stdout.close()
        self.proc.wait()
        return int(sum(hits.values()))


def bare_fetch_rate(urls: list[str], concurrency: int) -> float:
    """Requests/s of plain threads fetching `urls` (what the network side allows)."""
    queue = list(urls)
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    url = queue.pop()
                client.get(url)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(urls) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=640)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    sites = Sites(args.rows, args.latency)
    with tempfile.TemporaryDirectory() as tmp:
        sheet_path = Path(tmp) / "companies.csv"
        with sheet_path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Company", "Website"])
            for name in sorted(sites.urls):
                writer.writerow([name, sites.urls[name]])
        settings = Settings(allow_hosts=tuple(sites.allow_hosts), concurrency=args.concurrency)
        store = open_store(f"sqlite:///{tmp}/progress.db")
        with services_for(settings) as services:
            processor = BatchProcessor(
                store=store,
                sheet=open_sheet(str(sheet_path)),
                pipeline=load_pipeline("company"),
                options=RunOptions(concurrency=args.concurrency),
                services=services,
            )
            batch_id = processor.prepare()
            started, cpu = time.perf_counter(), time.process_time()
            snap = processor.run(batch_id)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
        store.close()
    requests = sites.stop()
    per_row = requests / args.rows
    rate = args.rows / seconds
    limit = args.concurrency / (per_row * args.latency)
    baseline = Sites(args.rows, args.latency)
    sample = sorted(baseline.urls.values())
    bare = bare_fetch_rate((sample * (int(per_row) + 1))[:requests], args.concurrency) / per_row
    baseline.stop()
    print(
        json.dumps(
            {
                "bench": "e2e_throughput",
                "rows": args.rows,
                "concurrency": args.concurrency,
                "latency_s": args.latency,
                "succeeded": snap["counts"]["succeeded"],
                "failed": snap["counts"]["failed"],
                "requests_per_row": round(per_row, 2),
                "rows_per_s": round(rate, 2),
                "cpu_ms_per_row": round(1000 * cpu / args.rows, 2),
                "limit_rows_per_s": round(limit, 2),
                "fraction_of_limit": round(rate / limit, 3),
                "bare_fetch_rows_per_s": round(bare, 2),
                "bare_fetch_fraction_of_limit": round(bare / limit, 3),
                "target_fraction": 0.8,
                "meets_target": rate / limit >= 0.8,
            }
        )
    )


if __name__ == "__main__":
    main()
