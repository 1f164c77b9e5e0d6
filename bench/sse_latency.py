"""SSE delivery latency with 200 concurrent clients following one batch on one node.

`sheetbatch serve` (gevent, SQLite) runs a batch of paced rows in-process; 200 SSE clients
(asyncio, in this process) follow `/events/batches/<id>`. Latency of an event =
the client's receive time minus the event's `time` (taken when its transaction began, so
the figure includes the commit). Halfway through, every client drops its connection, is offline
for `--gap` seconds and reconnects with `Last-Event-ID` as EventSource does: after the
reconnection time its stream's `retry:` set (tries every `retry:` ms until the network is
back; 3 s without one). Each client's events are then compared with the log (lost = in the
log but never received, duplicates = received twice).

With `--keep-alive` the clients speak as browsers do: HTTP/1.1 without `Connection: close`;
after `end` each client asks for the batch's snapshot on the same connection (as the
dashboard does), then leaves; a stream that breaks is reopened EventSource-style with
`Last-Event-ID` on a new connection. `--clients 200,500,1000` sweeps client counts on one
server (a fresh batch per point). For each point the figures also say whether the server
survived, how many errors it logged (tracebacks, ConcurrentObjectUseError), the latency of
`/healthz` probes made meanwhile (a new connection every 100 ms), and the server's RSS before,
at its peak and 3 s after the clients left.

The baseline, measured in the same run: flask-sse on Redis (bench/flask_sse_baseline.py) with
the same clients, the same event sequence and pacing (replayed from this run's log) and the
same forced reconnect (first point only). Targets: 0 lost, 0 server errors, p99 <= 100 ms at
200 clients and <= 300 ms at 1,000; server RSS <= 400 MB at 1,000 and back within 20 % of its
start after they leave. Prints one JSON line.

Latency counts live deliveries: events committed while the client's connection was open
(events replayed after the forced reconnect, or committed before a connection's headers
arrived, are reported separately as `p99_ms_incl_replayed`). The clients use a lean asyncio
SSE parser: httpx-sse's per-message cost, not the server, would otherwise dominate.

Usage: .venv/bin/python bench/sse_latency.py [--clients 200[,500,1000]] [--keep-alive]
       [--rows 60] [--no-baseline]
Debugging: SSE_BENCH_SERVER_LOG=file keeps the server's log; SSE_BENCH_PROFILE=file runs the
server under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("fetch", "parse", "enrich", "score")
_TIME = re.compile(r'"time":"([^"]+)"')
SERVE = [sys.executable, "-m", "sheetbatch", "serve"]


def paced() -> Any:
    """The benchmark's pipeline: four phases that each wait SSE_BENCH_PHASE_SECONDS (I/O)."""
    from pipeline.phase import Phase, Pipeline

    delay = float(os.environ.get("SSE_BENCH_PHASE_SECONDS", "0.15"))

    def step(name: str) -> Callable[[Any], Mapping[str, Any]]:
        def run(ctx: Any) -> Mapping[str, Any]:
            time.sleep(delay / 2)
            ctx.report(0.5, "half way")
            time.sleep(delay / 2)
            return {name: True}

        return run

    return Pipeline(name="paced", phases=[Phase(n, step(n)) for n in PHASES])


def parse_time(text: str) -> float:
    """An event's ISO 8601 UTC time as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Client:
    """One SSE client's record: what it received and when."""

    received: dict[int, float] = field(default_factory=dict)
    sent_at: dict[int, float] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    first_cursor: int | None = None
    gap: tuple[float, float] | None = None
    replayed: set[int] = field(default_factory=set)
    ended: bool = False
    error: str = ""
    retries: int = 0


Message = tuple[str | None, str, str]  # (id, event, data) as an EventSource dispatches it
OPENED = "\x00opened"  # yielded once the response head arrived
RETRY = "\x00retry"  # yielded with a `retry:` field's milliseconds (the reconnection time)
DEFAULT_RETRY_S = 3.0  # EventSource's reconnection time until a stream sets one ("a few s")


def reconnect_wait(offline: float, retry: float) -> float:
    """When EventSource is back after a cut that keeps the network away for `offline` s:
    it retries every `retry` s (the stream's `retry:`), and the first try that finds the
    network back connects."""
    return retry * max(1, math.ceil(offline / retry)) if retry > 0 else offline


class Conn:
    """One HTTP/1.1 connection (asyncio streams), reusable when the server keeps it alive."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, host: str, port: int, target: str, headers: Mapping[str, str]) -> str:
        """Send a GET; the response head (the connection stays open unless told otherwise)."""
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {host}:{port}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if "connection: close" in head.lower():
            self.reusable = False
        return head

    async def body(self, head: str) -> AsyncIterator[bytes]:
        """The response body's pieces, chunked or sized (or up to EOF)."""
        lower = head.lower()
        if "transfer-encoding: chunked" in lower:
            while True:
                size = int((await self.reader.readline()).strip() or b"0", 16)
                if size == 0:
                    await self.reader.readline()
                    return
                yield (await self.reader.readexactly(size + 2))[:-2]
        match = re.search(r"content-length: *(\d+)", lower)
        if match:
            yield await self.reader.readexactly(int(match.group(1)))
            return
        self.reusable = False
        while data := await self.reader.read(65536):
            yield data

    def close(self) -> None:
        self.writer.close()


async def sse_messages(
    url: str, headers: Mapping[str, str], *, conn: Conn | None = None
) -> AsyncIterator[Message]:
    """A lean SSE client (asyncio streams, HTTP/1.1, chunked or not): the messages of `url`.

    Without `conn` it opens its own connection and asks the server to close it after the
    response (`Connection: close`); with `conn` it speaks as a browser does (keep-alive)
    and leaves the connection open for the next request. httpx-sse costs tens of
    microseconds per message in Python; with hundreds of clients in one process that
    cost, not the server, would dominate the measured latency.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    own = conn is None
    connection = conn or await Conn.open(host, port)
    try:
        extra = {"Accept": "text/event-stream", **({"Connection": "close"} if own else {})}
        target = f"{parts.path}{'?' + parts.query if parts.query else ''}"
        head = await connection.send(host, port, target, {**extra, **headers})
        if not head.startswith("HTTP/1.1 200"):
            raise RuntimeError(head.splitlines()[0])
        yield None, OPENED, ""
        buffer = ""
        async for data in connection.body(head):
            buffer += data.decode()
            *blocks, buffer = buffer.split("\n\n")
            for block in blocks:
                if block.startswith("id: "):  # the usual message: id, event, data lines
                    lines = block.split("\n")
                    if (
                        len(lines) == 3
                        and lines[1].startswith("event: ")
                        and lines[2].startswith("data: ")
                    ):
                        yield lines[0][4:], lines[1][7:], lines[2][6:]
                        continue
                event_id: str | None = None
                kind = "message"
                payload: list[str] = []
                for line in block.split("\n"):
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        payload.append(value)
                    elif name == "id":
                        event_id = value
                    elif name == "event":
                        kind = value
                    elif name == "retry" and value.isdigit():  # as EventSource: at once
                        yield None, RETRY, value
                if payload:  # comments and retry-only blocks are not dispatched
                    yield event_id, kind, "\n".join(payload)
    finally:
        if own:
            connection.close()


async def follow(
    url: str,
    record: Client,
    reconnect: asyncio.Event,
    gap: float,
    *,
    resume: Callable[[int | None], dict[str, str]],
    event_time: Callable[[Message], tuple[int, float] | None],
    keep_alive: bool = False,
    after_end: str | None = None,
    other_url: str | None = None,
) -> None:
    """Follow one stream to its end, dropping and resuming the connection once on `reconnect`
    (on `other_url`, another node, when given).

    With `keep_alive` the client behaves as a browser: one kept-alive connection; after
    `end` it GETs `after_end` on that same connection; a stream that broke is reopened on a
    new connection with `Last-Event-ID` (up to 5 times, as EventSource retries). Like
    EventSource it waits the stream's `retry:` time before reconnecting, after a broken
    stream and after the cut (`reconnect_wait`: the cut keeps it offline `gap` seconds).
    """
    retry = DEFAULT_RETRY_S
    cursor: int | None = None
    dropped = False
    opened = float("inf")
    parts = urlsplit(url)
    conn: Conn | None = None
    broken = 0
    while True:
        try:
            if keep_alive and (conn is None or not conn.reusable):
                if conn is not None:
                    conn.close()
                conn = await Conn.open(parts.hostname or "127.0.0.1", parts.port or 80)
            cut = False
            async for message in sse_messages(url, resume(cursor), conn=conn):
                now = time.time()
                event_id_text, kind, _ = message
                if kind == OPENED:
                    opened = now
                    continue
                if kind == RETRY:
                    retry = int(message[2]) / 1000
                    continue
                if kind == "end":
                    record.ended = True
                    continue  # read the response to its end: the connection is reused
                if kind == "snapshot":
                    cursor = record.first_cursor = int(event_id_text or 0)
                    continue
                parsed = event_time(message)
                if parsed is None:
                    continue
                event_id, sent = parsed
                if sent < opened:
                    # Committed before this connection was open: a replay, not live delivery.
                    record.replayed.add(event_id)
                record.order.append(event_id)
                record.received.setdefault(event_id, now)
                record.sent_at[event_id] = sent
                cursor = event_id
                if reconnect.is_set() and not dropped:
                    cut = True
                    break
            if cut and conn is not None:
                conn.close()  # the cut: this connection is gone
                conn = None
        except Exception as exc:  # a boundary: retry like EventSource, then give up
            if conn is not None:
                conn.close()
                conn = None
            broken += 1
            if not keep_alive or broken > 5:
                record.error = f"{type(exc).__name__}: {exc}"
                return
            record.retries += 1
            await asyncio.sleep(retry)
            continue
        if record.ended:
            if keep_alive and conn is not None and after_end:
                try:
                    head = await conn.send(parts.hostname or "", parts.port or 80, after_end, {})
                    async for _ in conn.body(head):
                        pass
                    if not head.startswith("HTTP/1.1 200"):
                        record.error = "after end: " + head.splitlines()[0]
                except Exception as exc:
                    record.error = f"after end: {type(exc).__name__}: {exc}"
            if conn is not None:
                conn.close()
            return
        if not dropped and reconnect.is_set():
            dropped = True
            started = time.time()
            if other_url is not None:
                url, parts = other_url, urlsplit(other_url)
            await asyncio.sleep(reconnect_wait(gap, retry))
            record.gap = (started, time.time())
            continue
        if keep_alive:
            continue  # the stream ended without `end`: EventSource reconnects
        return


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summarise(records: list[Client], expected: Callable[[Client], list[int]]) -> dict[str, Any]:
    """Latency percentiles (live events, and all), events lost and duplicated."""
    live: list[float] = []
    everything: list[float] = []
    lost = dup = 0
    ended = sum(1 for r in records if r.ended)
    for r in records:
        want = expected(r)
        lost += len(set(want) - set(r.received))
        dup += len(r.order) - len(set(r.order))
        for event_id, got in r.received.items():
            latency = (got - r.sent_at[event_id]) * 1000
            everything.append(latency)
            if event_id not in r.replayed:
                live.append(latency)
    return {
        "p50_ms": round(percentile(live, 50), 1),
        "p99_ms": round(percentile(live, 99), 1),
        "max_ms": round(max(live), 1) if live else None,
        "p99_ms_incl_replayed": round(percentile(everything, 99), 1),
        "live_deliveries": len(live),
        "deliveries": len(everything),
        "events_lost": lost,
        "duplicates": dup,
        "clients_ended": ended,
        "client_retries": sum(r.retries for r in records),
        "client_errors": sorted({r.error for r in records if r.error})[:3],
    }


async def run_clients(
    url: str,
    n: int,
    gap: float,
    *,
    resume: Callable[[int | None], dict[str, str]],
    event_time: Callable[[Message], tuple[int, float] | None],
    reconnect_when: Callable[[list[Client]], bool],
    timeout: float,
    keep_alive: bool = False,
    after_end: str | None = None,
    other_url: str | None = None,
) -> list[Client]:
    """`n` clients following `url`; the forced reconnect happens when `reconnect_when` says."""
    records = [Client() for _ in range(n)]
    reconnect = asyncio.Event()
    tasks = [
        asyncio.create_task(
            follow(
                url,
                r,
                reconnect,
                gap,
                resume=resume,
                event_time=event_time,
                keep_alive=keep_alive,
                after_end=after_end,
                other_url=other_url,
            )
        )
        for r in records
    ]

    async def watch() -> None:
        while not reconnect.is_set():
            if reconnect_when(records):
                reconnect.set()
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    _done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    watcher.cancel()
    return records


# ------------------------------------------------------------------------------ sheetbatch
_SERVER_ERRORS = re.compile(r"Traceback|ConcurrentObjectUseError|Assertion|epoll|ERROR")


@dataclass
class Served:
    """The server under test: its process, URL and everything it logged."""

    proc: Any
    url: str
    log: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return [line for line in self.log if _SERVER_ERRORS.search(line)]


def raise_nofile() -> int:
    """Raise this process's soft open-file limit to the hard one (1,000 clients need it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def start_server(
    workdir: Path,
    db: str,
    concurrency: int,
    phase_seconds: float,
    src: Path = ROOT / "src",
    extra: tuple[str, ...] = (),
) -> Served:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEETBATCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(src)])
    env["SHEETBATCH_PIPELINE"] = "bench.sse_latency:paced"
    env["SSE_BENCH_PHASE_SECONDS"] = str(phase_seconds)
    # An older tree (`--src`, to measure the "before") lacks the newer options.
    new = "--sheet-dir" in (src / "sheetbatch" / "serve.py").read_text()
    if new:
        (workdir / "config").mkdir(exist_ok=True)
        # Room for the largest sweep point plus probes.
        (workdir / "config" / "bench.toml").write_text("[server]\nmax_connections = 5000\n")
    command = SERVE
    if os.environ.get("SSE_BENCH_PROFILE"):  # profile the server: python -m cProfile ...
        command = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            os.environ["SSE_BENCH_PROFILE"],
            "-m",
            "sheetbatch.serve",
        ]
    proc = subprocess.Popen(
        [
            *command,
            "--port",
            "0",
            "--db",
            db,
            "--concurrency",
            str(concurrency),
            *(["--sheet-dir", str(workdir)] if new else []),
            *extra,
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line.rstrip())
        match = re.search(r"serving on (http://\S+?)/?$", line.strip())
        if match:
            served = Served(proc, match.group(1), lines)
            threading.Thread(target=_drain, args=(proc.stderr, lines), daemon=True).start()
            return served
    raise RuntimeError("the server did not start:\n" + "\n".join(lines))


def _drain(stream: Any, lines: list[str]) -> None:
    """Keep reading the server's log (also to a file with SSE_BENCH_SERVER_LOG)."""
    target = os.environ.get("SSE_BENCH_SERVER_LOG")
    with open(target or os.devnull, "a") as out:
        for line in stream:
            lines.append(line.rstrip())
            out.write(line)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """A process's resident set size in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def probe_healthz(url: str, stop: asyncio.Event, every: float = 0.1) -> list[float]:
    """`/healthz` latencies (ms; a new connection each, as a probe makes) until `stop`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    out: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        try:
            conn = await asyncio.wait_for(Conn.open(host, port), 10)
            try:
                head = await asyncio.wait_for(
                    conn.send(host, port, "/healthz", {"Connection": "close"}), 10
                )
                async for _ in conn.body(head):
                    pass
                ok = head.startswith("HTTP/1.1 200")
            finally:
                conn.close()
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            ok = False
        out.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
        await asyncio.sleep(every)
    return out


def bench_point(
    args: argparse.Namespace, served: Served, workdir: Path, db: str, clients: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One sweep point: a fresh batch followed by `clients` clients; figures and its log."""
    import httpx

    from progress import open_store

    url = served.url
    pid = served.proc.pid
    errors_before = len(served.errors())
    sheet = workdir / f"bench-{clients}.csv"
    with sheet.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Company", "Website"])
        writer.writerows([(f"Company {i}", f"https://c{i}.test") for i in range(args.rows)])
    rss_start = rss_mb(pid)
    cpu_start = process_cpu(pid)
    answer = httpx.post(f"{url}/api/batches", json={"sheet": str(sheet)}, timeout=60)
    answer.raise_for_status()
    batch_id = answer.json()["batch_id"]
    total = args.rows * (2 + 3 * len(PHASES))

    def event_time(message: Message) -> tuple[int, float] | None:
        event_id, kind, data = message
        if kind == "ping" or not event_id:
            return None
        match = _TIME.search(data)
        assert match is not None, data
        return int(event_id), parse_time(match.group(1))

    peak = [rss_start]
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    # The clients run in processes of their own (250 each) and the /healthz probe in yet
    # another: one asyncio loop busy with 1,000 streams would lag and blame the server.
    procs = max(1, min(os.cpu_count() or 1, math.ceil(clients / 250)))
    me = [sys.executable, str(Path(__file__).resolve())]
    probe = subprocess.Popen(
        [*me, "--probe", url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    spec = {
        "url": f"{url}/events/batches/{batch_id}",
        "gap": args.gap,
        "total": total,
        "timeout": args.timeout,
        "keep_alive": args.keep_alive,
        "after_end": f"/api/batches/{batch_id}",
    }
    workers = []
    for i in range(procs):
        share = clients // procs + (1 if i < clients % procs else 0)
        workers.append(
            subprocess.Popen(
                [*me, "--client-worker", json.dumps({**spec, "n": share})],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    cpu_before, wall_before = _children_cpu(), time.monotonic()
    records = [_client_from(r) for w in workers for r in json.loads(w.communicate()[0])]
    client_wall = time.monotonic() - wall_before
    health = [float(v) for v in json.loads(probe.communicate("")[0])]  # EOF: stop probing
    stop.set()
    sampler.join()
    client_cpu = (_children_cpu() - cpu_before) / procs
    time.sleep(3.0)  # the clients have left: what does the server give back?
    rss_after = rss_mb(pid)
    store = open_store(db)
    try:
        log = store.events_after(0, batch_id=batch_id, limit=1_000_000)
    finally:
        store.close()

    def expected(r: Client) -> list[int]:
        first = r.first_cursor or 0
        return [e["id"] for e in log if e["id"] > first]

    figures = summarise(records, expected)
    if os.environ.get("SSE_BENCH_TIMELINE"):
        print_timeline(records, healthz_start=None)
    answered = [h for h in health if h < 1e9]
    figures.update(
        {
            "clients": clients,
            "events_in_batch": len(log),
            "server_alive": served.proc.poll() is None,
            "server_errors": len(served.errors()) - errors_before,
            "server_error_samples": served.errors()[errors_before:][:3],
            "healthz_probes": len(health),
            "healthz_failed": len(health) - len(answered),
            "healthz_p99_ms": round(percentile(answered, 99), 1) if answered else None,
            "healthz_max_ms": round(max(answered), 1) if answered else None,
            "rss_mb_start": rss_start,
            "rss_mb_peak": peak[0],
            "rss_mb_after": rss_after,
            "server_cpu_s": round(process_cpu(pid) - cpu_start, 2),
            # CPU share of a core per client process: near 1, they (not the server) may set
            # the latency measured.
            "client_procs": procs,
            "client_cpu_share": round(client_cpu / client_wall, 2),
        }
    )
    return figures, log


def print_timeline(records: list[Client], healthz_start: float | None) -> None:
    """Debugging (SSE_BENCH_TIMELINE=1): live latency p50/p99 per second of commit time."""
    buckets: dict[int, list[float]] = {}
    start = min((s for r in records for s in r.sent_at.values()), default=0.0)
    for r in records:
        for event_id, got in r.received.items():
            if event_id in r.replayed:
                continue
            sent = r.sent_at[event_id]
            buckets.setdefault(int((sent - start) * 4), []).append((got - sent) * 1000)
    for k in sorted(buckets):
        v = buckets[k]
        print(
            f"t={k / 4:5.2f}s n={len(v):6d} p50={percentile(v, 50):7.1f} "
            f"p99={percentile(v, 99):7.1f} max={max(v):7.1f}",
            file=sys.stderr,
        )


def _client_from(data: dict[str, Any]) -> Client:
    """A client's record back from a client process's JSON (keys were strings there)."""
    return Client(
        received={int(k): v for k, v in data["received"].items()},
        sent_at={int(k): v for k, v in data["sent_at"].items()},
        order=list(data["order"]),
        first_cursor=data["first_cursor"],
        gap=tuple(data["gap"]) if data["gap"] else None,
        replayed=set(data["replayed"]),
        ended=data["ended"],
        error=data["error"],
        retries=data["retries"],
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def client_worker(spec: dict[str, Any]) -> None:
    """A client process: `spec["n"]` clients; prints their records as JSON."""

    def event_time(message: Message) -> tuple[int, float] | None:
        event_id, kind, data = message
        if kind == "ping" or not event_id:
            return None
        match = _TIME.search(data)
        assert match is not None, data
        return int(event_id), parse_time(match.group(1))

    records = asyncio.run(
        run_clients(
            spec["url"],
            spec["n"],
            spec["gap"],
            resume=lambda c: {} if c is None else {"Last-Event-ID": str(c)},
            event_time=event_time,
            reconnect_when=lambda rs: spec["gap"] >= 0 and len(rs[0].order) >= spec["total"] // 2,
            timeout=spec["timeout"],
            keep_alive=spec["keep_alive"],
            after_end=spec["after_end"],
            other_url=spec.get("other_url"),
        )
    )
    out = []
    for r in records:
        d = asdict(r)
        d["replayed"] = sorted(r.replayed)
        out.append(d)
    print(json.dumps(out))


def probe_worker(url: str) -> None:
    """The /healthz probe process: probes until its stdin closes; prints the latencies."""
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

    async def run() -> list[float]:
        done = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.05)
            done.set()

        watcher = asyncio.create_task(watch())
        values = await probe_healthz(url, done)
        await watcher
        return values

    print(json.dumps([v if v != float("inf") else 1e9 for v in asyncio.run(run())]))


def point_ok(figures: dict[str, Any]) -> bool:
    """The point's targets (see the module docstring); RSS "after" is compared with the
    RSS just before the point's batch (bounded caches fill with the first batch)."""
    n = figures["clients"]
    p99_target = 100 if n <= 200 else 300
    return bool(
        figures["server_alive"]
        and figures["server_errors"] == 0
        and figures["events_lost"] == 0
        and figures["duplicates"] == 0
        and figures["clients_ended"] == n
        and figures["p99_ms"] <= p99_target
        and (n < 1000 or figures["rss_mb_peak"] <= 400)
        and figures["rss_mb_after"] <= 1.2 * figures["rss_mb_start"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="200", help="a count, or a sweep: 200,500,1000")
    parser.add_argument("--keep-alive", action="store_true", help="clients speak as browsers")
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--phase-seconds", type=float, default=0.15)
    parser.add_argument(
        "--gap",
        type=float,
        default=0.5,
        help="seconds offline at the forced reconnect (negative: none)",
    )
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the server's code")
    parser.add_argument("--client-worker", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_worker:
        raise_nofile()
        client_worker(json.loads(args.client_worker))
        return
    if args.probe:
        probe_worker(args.probe)
        return
    counts = [int(c) for c in str(args.clients).split(",") if c.strip()]
    raise_nofile()
    points: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sse-bench-") as tmp:
        workdir = Path(tmp)
        db = f"sqlite:///{workdir / 'progress.db'}"
        served = start_server(workdir, db, args.concurrency, args.phase_seconds, args.src)
        try:
            time.sleep(1.0)
            rss_fresh = rss_mb(served.proc.pid)
            first_log: list[dict[str, Any]] = []
            for n in counts:
                figures, log = bench_point(args, served, workdir, db, n)
                figures["ok"] = point_ok(figures)
                points.append(figures)
                first_log = first_log or log
                if not figures["server_alive"]:
                    break
        finally:
            served.proc.terminate()
            served.proc.wait(60)
    result: dict[str, Any] = {
        "bench": "sse_latency",
        "src": str(args.src),
        "keep_alive": args.keep_alive,
        "rows": args.rows,
        "concurrency": args.concurrency,
        "reconnect_gap_s": args.gap,
        "server_rss_mb_fresh": rss_fresh,
        "targets": {"p99_ms_200": 100, "p99_ms_1000": 300, "rss_mb_1000": 400},
        "sheetbatch": points if len(points) > 1 else points[0],
    }
    if not args.no_baseline:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from flask_sse_baseline import bench_flask_sse

        result["flask_sse_redis"] = bench_flask_sse(
            trace=[(parse_time(e["time"]), e["type"]) for e in first_log],
            clients=counts[0],
            gap=args.gap,
            timeout=args.timeout,
        )
    result["ok"] = all(p["ok"] for p in points) and len(points) == len(counts)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
