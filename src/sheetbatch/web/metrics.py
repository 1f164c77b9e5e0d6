"""`/metrics`: the server's figures in the Prometheus text exposition format (version 0.0.4),
written by prometheus_client.

Each app has a `CollectorRegistry` of its own (nothing lands in prometheus_client's global
one, so apps and tests never see each other's figures): process and Python runtime figures
(`process_*`, `python_*`), this process's counters and flush-time histogram, and gauges read
at scrape time from the stream hub, the batch runner and the HTTP server.

Jobs, batches, the log head and the schedulers come from the store, so they cover every
process writing to it: `StoreFigures.read` gets them with aggregate queries (no batch
snapshot is built) and is the one blocking part of a scrape, run off the event loop by the
view; `Metrics.exposition` writes them out with the registry's figures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from progress import Store
from progress.reads import StatusCounts
from sheetbatch.web.schedule_metrics import ScheduleFigures
from sheets_integration.writer import FlushReport

log = logging.getLogger(__name__)

# What `generate_latest` writes (prometheus_client's own constant moved on to 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FLUSH_BUCKETS: Sequence[float] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class StoreFigures:
    """What the store holds, read once per scrape."""

    counts: StatusCounts
    head: int
    schedules: ScheduleFigures

    @classmethod
    def read(cls, store: Store) -> StoreFigures:
        """Read them now: a few aggregate queries (blocking: call it off the event loop)."""
        return cls(
            counts=store.status_counts(),
            head=store.last_event_id(),
            schedules=ScheduleFigures.read(store),
        )

    def families(self) -> Iterator[Metric]:
        """The store's metric families."""
        yield _by_status("sheetbatch_jobs", "Jobs in the store by status.", self.counts.jobs)
        yield _by_status(
            "sheetbatch_batches", "Batches in the store by status.", self.counts.batches
        )
        yield CounterMetricFamily(
            "sheetbatch_events_appended_total",
            "Events appended to the progress log (its newest id).",
            value=self.head,
        )
        yield from self.schedules.families()


def _by_status(name: str, documentation: str, counts: Mapping[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, n in sorted(counts.items()):
        family.add_metric([status], n)
    return family


class Metrics:
    """This process's figures in the app's own registry; thread-safe.

    The callables are read at every scrape, on the event loop, by whoever set them:
    `stream_stats` (streams open now, opened so far) and `running_here` by `create_app`,
    `connection_stats` (connections open now, refused at the cap so far) by the server.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._events_sent = Counter(
            "sheetbatch_sse_events_sent_total",
            "Log events written to Server-Sent Event streams.",
            registry=self.registry,
        )
        self._flush_seconds = Histogram(
            "sheetbatch_sheet_flush_seconds",
            "Time one sheet flush took (batches run by this process).",
            buckets=FLUSH_BUCKETS,
            registry=self.registry,
        )
        self._rows_written = Counter(
            "sheetbatch_sheet_rows_written_total",
            "Sheet rows written by this process's sheet writers.",
            registry=self.registry,
        )
        self.stream_stats: Callable[[], tuple[int, int]] | None = None
        self.running_here: Callable[[], int] | None = None
        self.connection_stats: Callable[[], tuple[int, int]] | None = None
        self.registry.register(_LiveCollector(self))

    def events_sent(self, n: int) -> None:
        """Count log events written to SSE streams."""
        self._events_sent.inc(n)

    def observe_flush(self, report: FlushReport) -> None:
        """Record one sheet flush (the sheet writer's hook)."""
        self._flush_seconds.observe(report.seconds)
        self._rows_written.inc(report.rows)

    def exposition(self, store: StoreFigures) -> bytes:
        """The whole exposition text: the store's figures, then the registry's."""
        return generate_latest(_Scrape(self.registry, store))


class _LiveCollector(Collector):
    """Gauges and counters other parts keep: read when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        open_streams, opened = m.stream_stats() if m.stream_stats else (0, 0)
        yield GaugeMetricFamily(
            "sheetbatch_sse_open_streams", "Server-Sent Event streams open now.", value=open_streams
        )
        yield CounterMetricFamily(
            "sheetbatch_sse_streams_opened_total",
            "Server-Sent Event streams opened since the server started.",
            value=opened,
        )
        yield GaugeMetricFamily(
            "sheetbatch_batches_running_here",
            "Batches this server's worker processes are running.",
            value=m.running_here() if m.running_here else 0,
        )
        open_now, refused = m.connection_stats() if m.connection_stats else (0, 0)
        yield GaugeMetricFamily(
            "sheetbatch_http_connections",
            "HTTP connections open now (sheetbatch serve).",
            value=open_now,
        )
        yield CounterMetricFamily(
            "sheetbatch_http_connections_refused_total",
            "Connections answered 503 because the connection cap was reached.",
            value=refused,
        )


class _Scrape(Collector):
    """One scrape: the store's figures as read for it, then the app's registry."""

    def __init__(self, registry: CollectorRegistry, store: StoreFigures) -> None:
        self._registry = registry
        self._store = store

    def collect(self) -> Iterator[Metric]:
        yield from self._store.families()
        yield from self._registry.collect()
