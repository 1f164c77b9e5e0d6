"""The real server in a subprocess, started the way users start it, and small client helpers."""

from __future__ import annotations

import csv
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

ROOT = Path(__file__).resolve().parents[2]
SLOW_PIPELINE = "tests.support.pipelines:slow"
_SERVING = re.compile(r"sheetbatch serving on (http://\S+?)/?$")
# The real command line: `sheetbatch serve` re-executes itself as `python -m sheetbatch.serve`
# (so gevent patches first), keeping its pid.
SERVE = [sys.executable, "-m", "sheetbatch", "serve"]


@dataclass
class Server:
    """A running `sheetbatch serve` process."""

    url: str
    db_url: str
    workdir: Path
    proc: subprocess.Popen[str]
    # The directory the server lets the API and dashboard use local sheets from.
    sheets: Path
    log: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this server."""
        kwargs.setdefault("timeout", httpx.Timeout(10.0, read=30.0))
        return httpx.Client(base_url=self.url, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server and wait for it to exit; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(
                "the server did not exit after the signal:\n" + self.output()
            ) from None
        finally:
            if self.pump is not None:
                self.pump.join(5)
            if self.proc.stderr is not None:
                self.proc.stderr.close()

    def output(self) -> str:
        """What the server wrote to stderr so far."""
        return "\n".join(self.log[-200:])


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a test server: our test pipelines importable, no ambient secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEETBATCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    env["SHEETBATCH_PIPELINE"] = SLOW_PIPELINE
    env["SHEETBATCH_TEST_PHASE_SECONDS"] = "0.1"
    env.update(extra)
    return env


def start_server(
    workdir: Path,
    db_url: str,
    *,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    open_files: int | None = None,
) -> Server:
    """Start `sheetbatch serve --port 0` in `workdir` and wait until it listens.

    Local sheets are allowed from `workdir/sheets` (`--sheet-dir`), the server's only one.
    `open_files` starts it with that soft RLIMIT_NOFILE (as `ulimit -n` would).
    """

    def limit() -> None:
        if open_files is not None:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))

    workdir.mkdir(parents=True, exist_ok=True)
    sheets = workdir / "sheets"
    sheets.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [*SERVE, "--port", "0", "--db", db_url, "--sheet-dir", str(sheets), *args],
        cwd=workdir,
        env=env or server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit if open_files is not None else None,
    )
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            match = _SERVING.search(line.strip())
            if match and not url:
                url.append(match.group(1))
                found.set()
        found.set()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    if not found.wait(timeout) or not url:
        proc.kill()
        proc.wait(5)
        thread.join(5)
        if proc.stderr is not None:
            proc.stderr.close()
        raise AssertionError("the server did not start:\n" + "\n".join(lines))
    return Server(
        url=url[0], db_url=db_url, workdir=workdir, proc=proc, sheets=sheets, log=lines, pump=thread
    )


def write_sheet(path: Path, rows: Sequence[tuple[str, str]]) -> Path:
    """A CSV sheet with Company and Website columns."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Company", "Website"])
        writer.writerows(rows)
    return path


def companies(n: int, *, fail_every: int = 0, prefix: str = "Co") -> list[tuple[str, str]]:
    """`n` rows; every `fail_every`-th one fails in the crawl phase of the slow pipeline."""
    rows = []
    for i in range(1, n + 1):
        failing = fail_every and i % fail_every == 0
        rows.append((f"{prefix} {i}", f"https://{'fail' if failing else 'ok'}{i}.test"))
    return rows


def start_batch(client: httpx.Client, sheet: Path, **extra: Any) -> str:
    """POST /api/batches; the batch id."""
    answer = client.post("/api/batches", json={"sheet": str(sheet), **extra})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["batch_id"])


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def wait_batch_done(client: httpx.Client, batch_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The batch's snapshot once it is no longer running."""

    def done() -> dict[str, Any] | None:
        snap: dict[str, Any] = client.get(f"/api/batches/{batch_id}").json()
        return snap if snap["status"] != "running" else None

    result: dict[str, Any] = wait_for(done, timeout)
    return result


def read_events(
    client: httpx.Client,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    stop: Callable[[ServerSentEvent], bool] | None = None,
) -> list[ServerSentEvent]:
    """Read a stream until it ends (or `stop(event)` says so: then the client disconnects).

    Pings are dropped.
    """
    out: list[ServerSentEvent] = []
    with connect_sse(client, "GET", path, headers=dict(headers or {}), params=params) as source:
        source.response.raise_for_status()
        for sse in source.iter_sse():
            if sse.event == "ping":
                continue
            out.append(sse)
            if stop is not None and stop(sse):
                break
    return out


def metric(client: httpx.Client, name: str) -> float:
    """One sample of /metrics (the first line starting with `name `)."""
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
