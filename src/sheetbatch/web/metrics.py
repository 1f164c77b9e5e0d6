"""`/metrics`: the server's figures in the Prometheus text exposition format (version 0.0.4).

Jobs and batches by status come from the store (so they cover every process writing to it);
the stream, event and flush figures are this process's own.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from progress import Store
from progress.status import BatchStatus, JobStatus
from sheetbatch.web.schedule_metrics import schedule_lines
from sheets_integration.writer import FlushReport

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FLUSH_BUCKETS: Sequence[float] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    """A cumulative histogram: bucket counts, sum and count."""

    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        """Record one observation."""
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1


class Metrics:
    """This process's counters; thread-safe; rendered with the store's figures by `render`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sse_events_sent = 0
        self.sheet_flush = Histogram(FLUSH_BUCKETS)
        self.sheet_rows_written = 0
        # Set by the server: (connections open now, connections refused at the cap so far).
        self.connection_stats: Callable[[], tuple[int, int]] | None = None

    def events_sent(self, n: int) -> None:
        """Count log events written to SSE streams."""
        with self._lock:
            self.sse_events_sent += n

    def snapshot(self) -> tuple[int, Histogram, int]:
        """A consistent copy: events sent, the flush histogram, sheet rows written."""
        with self._lock:
            flush = Histogram(self.sheet_flush.buckets)
            flush.counts = list(self.sheet_flush.counts)
            flush.total, flush.count = self.sheet_flush.total, self.sheet_flush.count
            return self.sse_events_sent, flush, self.sheet_rows_written

    def observe_flush(self, report: FlushReport) -> None:
        """Record one sheet flush (the sheet writer's hook)."""
        with self._lock:
            self.sheet_flush.observe(report.seconds)
            self.sheet_rows_written += report.rows


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def render(
    metrics: Metrics,
    store: Store,
    *,
    open_streams: int,
    streams_opened: int,
    running_here: int,
) -> str:
    """The whole exposition text."""
    jobs = dict.fromkeys((s.value for s in JobStatus), 0)
    batches = dict.fromkeys((s.value for s in BatchStatus), 0)
    for batch in store.batches(limit=1_000_000):
        batches[batch["status"]] = batches.get(batch["status"], 0) + 1
        for status, n in batch["counts"].items():
            jobs[status] = jobs.get(status, 0) + int(n)
    head = store.last_event_id()
    sent, flush, rows = metrics.snapshot()
    lines: list[str] = []
    lines += _family(
        "sheetbatch_jobs",
        "gauge",
        "Jobs in the store by status.",
        (f'sheetbatch_jobs{{status="{_label(s)}"}} {n}' for s, n in sorted(jobs.items())),
    )
    lines += _family(
        "sheetbatch_batches",
        "gauge",
        "Batches in the store by status.",
        (f'sheetbatch_batches{{status="{_label(s)}"}} {n}' for s, n in sorted(batches.items())),
    )
    lines += _family(
        "sheetbatch_events_appended_total",
        "counter",
        "Events appended to the progress log (its newest id).",
        [f"sheetbatch_events_appended_total {head}"],
    )
    lines += _family(
        "sheetbatch_sse_open_streams",
        "gauge",
        "Server-Sent Event streams open now.",
        [f"sheetbatch_sse_open_streams {open_streams}"],
    )
    lines += _family(
        "sheetbatch_sse_streams_opened_total",
        "counter",
        "Server-Sent Event streams opened since the server started.",
        [f"sheetbatch_sse_streams_opened_total {streams_opened}"],
    )
    lines += _family(
        "sheetbatch_sse_events_sent_total",
        "counter",
        "Log events written to Server-Sent Event streams.",
        [f"sheetbatch_sse_events_sent_total {sent}"],
    )
    lines += _family(
        "sheetbatch_batches_running_here",
        "gauge",
        "Batches this server's worker processes are running.",
        [f"sheetbatch_batches_running_here {running_here}"],
    )
    bucket_lines = [
        f'sheetbatch_sheet_flush_seconds_bucket{{le="{_number(b)}"}} {c}'
        for b, c in zip(flush.buckets, flush.counts, strict=True)
    ]
    bucket_lines.append(f'sheetbatch_sheet_flush_seconds_bucket{{le="+Inf"}} {flush.count}')
    bucket_lines.append(f"sheetbatch_sheet_flush_seconds_sum {_number(flush.total)}")
    bucket_lines.append(f"sheetbatch_sheet_flush_seconds_count {flush.count}")
    lines += _family(
        "sheetbatch_sheet_flush_seconds",
        "histogram",
        "Time one sheet flush took (batches run by this process).",
        bucket_lines,
    )
    open_now, refused = metrics.connection_stats() if metrics.connection_stats else (0, 0)
    lines += _family(
        "sheetbatch_http_connections",
        "gauge",
        "HTTP connections open now (sheetbatch serve).",
        [f"sheetbatch_http_connections {open_now}"],
    )
    lines += _family(
        "sheetbatch_http_connections_refused_total",
        "counter",
        "Connections answered 503 because the connection cap was reached.",
        [f"sheetbatch_http_connections_refused_total {refused}"],
    )
    lines += _family(
        "sheetbatch_sheet_rows_written_total",
        "counter",
        "Sheet rows written by this process's sheet writers.",
        [f"sheetbatch_sheet_rows_written_total {rows}"],
    )
    lines += schedule_lines(store)
    return "\n".join(lines) + "\n"
