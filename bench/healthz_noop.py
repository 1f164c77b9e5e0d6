"""`/healthz` and SSE while a CPU-bound batch runs in `sheetbatch serve`.

A 10,000-row batch of the built-in `noop` pipeline (pure Python, no I/O: it never yields)
is started through the API; meanwhile `/healthz` is probed every 20 ms on a new connection
(as a load balancer would) and one SSE client follows the batch. The baseline, measured in
the same run on the same server: the probes' latency while idle, before the batch.
Target: p99 <= 100 ms during the batch, and events arriving while it runs (not only at its
end).

With `--src DIR` the server runs the code of another tree (e.g. the main branch, to measure
the "before"); it is then started without the options that tree lacks.

Usage: .venv/bin/python bench/healthz_noop.py [--rows 10000] [--src /path/to/other/src]
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def probe(url: str, seconds: float | None, until: threading.Event | None) -> list[float]:
    """Latencies (ms) of `/healthz` on new connections every 20 ms; inf for no answer in 10 s.

    A bare `http.client` connection: building an httpx client per probe costs more than
    the server's answer.
    """
    out: list[float] = []
    parts = urlsplit(url)
    end = time.monotonic() + (seconds or 0)
    while (until is None and time.monotonic() < end) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            ok = False
        finally:
            conn.close()
        out.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
        time.sleep(0.02)
    return out


def figures(latencies: list[float]) -> dict[str, Any]:
    answered = [v for v in latencies if v != float("inf")]
    return {
        "probes": len(latencies),
        "unanswered": len(latencies) - len(answered),
        "p50_ms": round(percentile(answered, 50), 1),
        "p99_ms": round(percentile(answered, 99), 1),
        "max_ms": round(max(answered), 1) if answered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    args = parser.parse_args()
    new_options = "--sheet-dir" in (args.src / "sheetbatch" / "serve.py").read_text()
    with tempfile.TemporaryDirectory(prefix="healthz-bench-") as tmp:
        workdir = Path(tmp)
        sheet = workdir / "noop.csv"
        with sheet.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Company", "Website"])
            writer.writerows((f"Co {i}", f"https://c{i}.test") for i in range(args.rows))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHEETBATCH_")}
        env["PYTHONPATH"] = str(args.src)
        command = [sys.executable, "-m", "sheetbatch", "serve", "--port", "0"]
        command += ["--db", f"sqlite:///{workdir / 'p.db'}", "--concurrency", "8"]
        if new_options:
            command += ["--sheet-dir", str(workdir)]
        proc = subprocess.Popen(command, cwd=workdir, env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            url = ""
            for line in proc.stderr:
                match = re.search(r"serving on (http://\S+?)/?$", line.strip())
                if match:
                    url = match.group(1)
                    break
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            idle = figures(probe(url, 5.0, None))
            started = time.monotonic()
            answer = httpx.post(
                f"{url}/api/batches", json={"sheet": str(sheet), "pipeline": "noop"}, timeout=120
            )
            answer.raise_for_status()
            submit_s = time.monotonic() - started
            batch_id = answer.json()["batch_id"]
            done = threading.Event()
            stream: dict[str, Any] = {"first_event_s": None}
            times: list[float] = []

            def follow() -> None:
                with httpx.stream(
                    "GET", f"{url}/events/batches/{batch_id}", timeout=httpx.Timeout(60.0)
                ) as response:
                    for line in response.iter_lines():
                        if line.startswith("event: "):
                            if stream["first_event_s"] is None:
                                stream["first_event_s"] = round(time.monotonic() - started, 3)
                            if line == "event: end":
                                break
                            times.append(time.monotonic() - started)
                done.set()

            follower = threading.Thread(target=follow, daemon=True)
            follower.start()
            during = probe(url, None, done)
            batch_s = time.monotonic() - started
            follower.join(30)
            # Events flowing while the batch runs (not in one burst at its end): the share
            # of them received in the first half of the batch's time.
            stream["events"] = len(times)
            stream["share_in_first_half"] = round(
                sum(1 for t in times if t <= batch_s / 2) / max(1, len(times)), 2
            )
        finally:
            proc.terminate()
            proc.wait(60)
    result = {
        "bench": "healthz_noop",
        "src": str(args.src),
        "rows": args.rows,
        "submit_s": round(submit_s, 2),
        "batch_s": round(batch_s, 1),
        "healthz_idle": idle,
        "healthz_during_batch": figures(during),
        "sse": stream,
        "target_p99_ms": 100,
    }
    result["ok"] = bool(
        result["healthz_during_batch"]["p99_ms"] <= 100
        and result["healthz_during_batch"]["unanswered"] == 0
        and stream["share_in_first_half"] > 0.2
    )
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
