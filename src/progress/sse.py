"""Server-Sent Events over the progress log: exact snapshots and the stream (the wire format is
`sse_wire`).

A stream is one of three scopes: a job, a batch, or the whole log. It follows these rules
(html.spec.whatwg.org, server-sent events):

- every log event goes out as `id: <log cursor>`, `event: <type>`, `data: <event as JSON>`;
  `retry:` is sent once, as a field of the stream's first message (a block holding only
  `retry:` would be dispatched as an empty message by some clients); a stream resumed
  from a cursor first sends a `: connected` comment so its headers go out at once;
  a heartbeat is sent every `ping_interval` seconds;
- with a cursor (the `Last-Event-ID` header or `?last_event_id=`) the stream replays every
  event of its scope after the cursor, in log order (from the feed's memory when it reaches
  back that far, else from the database), then continues live: the position scanned so far
  only moves past events that were sent or that are outside the scope, so nothing is
  skipped and nothing is sent twice;
- without a cursor it opens with a `snapshot` event whose `id:` is the cursor the snapshot is
  valid at. The snapshot and that cursor come from ONE read transaction (a single SQLite WAL
  read snapshot; REPEATABLE READ on PostgreSQL), so the state is exactly the log folded up to
  the cursor: the events that follow are precisely those not yet in it. A snapshot is
  bounded: a batch's carries the batch and its first `SNAPSHOT_ROWS` jobs (with
  `jobs_next_cursor` for `/api/progress/all?cursor=` when there are more), so its cost does
  not grow with the batch; its text is formatted once (`Snapshot.text`) and may be shared
  by every stream that starts from it;
- a job or batch stream ends with an `end` event right after the event that finished its job
  or batch (or at once, after the snapshot or replay, when it was already finished).

The heartbeat is a `: ping` comment (for proxies) followed, in the same block, by a `ping`
event without an `id:` - EventSource hides comments from scripts, and the dashboard's
watchdog needs to see that the stream is alive. A ping never moves the client's cursor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from progress import schema as t
from progress.reads import batch_row, job_row, log_head
from progress.snapshots import LogEvent, batch_snapshot, job_snapshot
from progress.sse_wire import (
    END_EVENT,
    SNAPSHOT_EVENT,
    format_event,
    format_log_event,
    format_ping,
    format_retry,
)
from progress.status import BatchStatus, EventType
from progress.steps import Step, StepCache
from progress.store import Store

log = logging.getLogger(__name__)

# How many recent batches the whole-log snapshot carries (the dashboard's list).
SNAPSHOT_BATCHES = 100
# How many jobs a batch snapshot carries (the rest is paged over REST from its cursor).
SNAPSHOT_ROWS = 200

_JOB_ENDINGS = frozenset(
    {EventType.JOB_SUCCEEDED.value, EventType.JOB_FAILED.value, EventType.JOB_CANCELLED.value}
)

Event = LogEvent


# --------------------------------------------------------------------------- scopes
@dataclass(frozen=True)
class Scope:
    """What a stream follows: one job, one batch, or (neither set) the whole log."""

    job_id: str | None = None
    batch_id: str | None = None

    @property
    def kind(self) -> str:
        """ "job", "batch" or "all"."""
        if self.job_id is not None:
            return "job"
        if self.batch_id is not None:
            return "batch"
        return "all"

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether the event belongs to this scope."""
        if self.job_id is not None:
            return bool(event["job_id"] == self.job_id)
        if self.batch_id is not None:
            return bool(event["batch_id"] == self.batch_id)
        return True

    def ends_with(self, event: Mapping[str, Any]) -> bool:
        """Whether the event finishes what this scope follows (the stream then ends)."""
        if self.job_id is not None:
            return bool(event["job_id"] == self.job_id and event["type"] in _JOB_ENDINGS)
        if self.batch_id is not None:
            return bool(
                event["batch_id"] == self.batch_id
                and event["type"] == EventType.BATCH_FINISHED.value
            )
        return False


@dataclass(frozen=True)
class Snapshot:
    """The state of a scope exactly at `cursor`, and whether its job or batch is finished."""

    cursor: int
    state: dict[str, Any]
    finished: bool

    def message(self) -> dict[str, Any]:
        """The `snapshot` event's data: the state plus the cursor it is valid at."""
        return {"cursor": self.cursor, **self.state}

    @property
    def text(self) -> str:
        """The `snapshot` event as SSE text, formatted once (streams may share it)."""
        cached: str | None = self.__dict__.get("_text")
        if cached is None:
            cached = format_event(self.cursor, SNAPSHOT_EVENT, self.message())
            object.__setattr__(self, "_text", cached)
        return cached


def read_snapshot(store: Store, scope: Scope, *, rows: int = SNAPSHOT_ROWS) -> Snapshot:
    """The scope's state and the log cursor it is valid at, read in one transaction.

    Raises UnknownJob / UnknownBatch. One read transaction makes the pair exact: on SQLite
    (WAL) every statement of a transaction reads the same database snapshot; on PostgreSQL
    the transaction runs at REPEATABLE READ for the same guarantee. A batch's snapshot holds
    its first `rows` jobs in row order; `jobs_next_cursor` (the `/api/progress/all` cursor
    after the last of them) is set when there are more.
    """
    conn = store.engine.connect()
    try:
        if conn.dialect.name != "sqlite":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            cursor = log_head(conn)
            now = store.clock()
            if scope.job_id is not None:
                job = job_snapshot(job_row(conn, scope.job_id))
                return Snapshot(cursor, {"job": job}, job["status"].terminal)
            if scope.batch_id is not None:
                batch = batch_snapshot(batch_row(conn, scope.batch_id), now)
                jobs = [
                    job_snapshot(r)
                    for r in conn.execute(
                        select(t.jobs)
                        .where(t.jobs.c.batch_id == scope.batch_id)
                        .order_by(t.jobs.c.row, t.jobs.c.job_id)
                        .limit(rows + 1)
                    )
                ]
                more = len(jobs) > rows
                jobs = jobs[:rows]
                next_cursor = f"{scope.batch_id}.{jobs[-1]['row']}" if more and jobs else None
                finished = batch["status"] is not BatchStatus.RUNNING
                state = {"batch": batch, "jobs": jobs, "jobs_next_cursor": next_cursor}
                return Snapshot(cursor, state, finished)
            batches = [
                batch_snapshot(r, now)
                for r in conn.execute(
                    select(t.batches).order_by(t.batches.c.created.desc()).limit(SNAPSHOT_BATCHES)
                )
            ]
            return Snapshot(cursor, {"batches": batches}, False)
    finally:
        conn.close()


def already_finished(store: Store, scope: Scope, cursor: int) -> bool:
    """Whether the scope's job or batch is finished by an event at or before `cursor`."""
    if scope.job_id is not None:
        job = store.job(scope.job_id)
        return job["status"].terminal and int(job["last_event_id"]) <= cursor
    if scope.batch_id is not None:
        batch = store.batch(scope.batch_id)
        return batch["status"] is not BatchStatus.RUNNING and int(batch["last_event_id"]) <= cursor
    return False


def compaction_mark(store: Store, scope: Scope) -> int:
    """The cursor below which the scope's log was compacted (0: never)."""
    return store.compaction_mark(batch_id=scope.batch_id, job_id=scope.job_id)


# --------------------------------------------------------------------------- the stream
class Waiter(Protocol):
    """How a stream waits for news: one per stream, fed by the process's single log feed."""

    def head(self) -> int:
        """The newest event id known to be committed (-1 while unknown)."""
        ...

    def wait(self, after: int, timeout: float) -> int | None:
        """Block until an event newer than `after` is known or `timeout` passes.

        Returns the newest known id, or None when the stream must stop now (the client
        went away or the server is shutting down).
        """
        ...


class LogReader(Protocol):
    """The store's reads a stream uses (the real `Store` satisfies it)."""

    def events_after(
        self, after: int, *, batch_id: str | None = ..., job_id: str | None = ..., limit: int = ...
    ) -> list[LogEvent]: ...

    def follow(
        self, after: int, *, batch_id: str | None = ..., job_id: str | None = ..., limit: int = ...
    ) -> list[LogEvent]: ...


@dataclass(frozen=True)
class Pushed:
    """What a `Pusher` did for a stream: its new position and why it handed the stream back."""

    scan: int
    ended: bool = False  # the `end` event was written: the stream is over
    stop: bool = False  # the client went away or the server is stopping
    behind: bool = False  # more than a page came at once: the stream reads it itself
    wrote_at: float | None = None  # when it last wrote (the heartbeat counts from there)


class Pusher(Protocol):
    """Writes a live stream's events for it (one writer for many streams; see web/streams)."""

    def push(
        self, scope: Scope, scan: int, step: Callable[[int, int], Step], until: float
    ) -> Pushed:
        """Write what `step` gives from `scan` on, as the log moves, until `until` (the
        stream's next heartbeat, on its clock), the end, a stop, or a jump of more than a
        page; blocks the stream meanwhile."""
        ...


@dataclass
class StreamPlan:
    """How a stream starts: from a client's cursor, or from a snapshot read just now."""

    scope: Scope
    cursor: int | None = None
    snapshot: Snapshot | None = None
    finished_at_cursor: bool = False


def event_stream(
    reader: LogReader,
    plan: StreamPlan,
    waiter: Waiter,
    *,
    ping_interval: float,
    retry_ms: int = 2000,
    page: int = 500,
    clock: Callable[[], float] = time.monotonic,
    on_sent: Callable[[int], None] | None = None,
    formatter: Callable[[Mapping[str, Any]], str] = format_log_event,
    steps: StepCache | None = None,
    pusher: Pusher | None = None,
) -> Iterator[str]:
    """The SSE text of one stream, chunk by chunk, until it ends or the waiter says stop.

    `plan` carries either the client's cursor (and whether the scope was already finished
    at it) or a snapshot; the caller reads those before answering, so unknown ids become a
    404 rather than a broken stream. `on_sent(n)` counts the log events written;
    `formatter` may share formatted events between streams (`EventFormatter`), and `steps`
    whole chunks between streams at the same position (`StepCache`). With a `pusher`, a
    stream that has caught up lets it write its live events (the text it would yield, at
    the same positions); the stream itself still sends the first chunk, any replay and the
    heartbeats.
    """
    scope = plan.scope
    filters: dict[str, Any] = {"batch_id": scope.batch_id, "job_id": scope.job_id}
    retry = [format_retry(retry_ms)]

    def with_retry(text: str) -> Iterator[str]:
        # The first message carries `retry:` (a field of its block, written just before
        # it); later ones do not. `text` itself goes out as it is: a snapshot's text is
        # shared by every stream that starts from it, and so are its encoded bytes - with
        # each stream's own `retry:` joined to it, a crowd of 1,000 would hold 1,000 copies.
        if retry:
            yield retry.pop()
        yield text

    if plan.snapshot is not None:
        scan = plan.snapshot.cursor
        yield from with_retry(plan.snapshot.text)
        if plan.snapshot.finished:
            yield format_event(scan, END_EVENT, {"cursor": scan, "scope": scope.kind})
            return
    else:
        scan = plan.cursor or 0
        if plan.finished_at_cursor:
            yield from with_retry(
                format_event(scan, END_EVENT, {"cursor": scan, "scope": scope.kind})
            )
            return
        yield ": connected\n\n"

    next_ping = clock() + ping_interval
    replaying = True

    def step(scan: int, known: int) -> Step:
        # What the stream sends from `scan` once the log is known up to `known`: the same
        # for every stream of this scope at this position, so it may be shared (`steps`).
        events = reader.follow(scan, limit=page, **filters)
        chunk: list[str] = []
        ended = False
        for event in events:
            if not scope.matches(event):
                continue  # a reader that ignores filters; keep the stream exact anyway
            chunk.append(formatter(event))
            scan = int(event["id"])
            if scope.ends_with(event):
                chunk.append(format_event(scan, END_EVENT, {"cursor": scan, "scope": scope.kind}))
                ended = True
                break
        caught_up = not ended and len(events) < page
        if caught_up:
            scan = max(scan, known)
        return Step("".join(chunk), len(chunk) - (1 if ended else 0), scan, ended, caught_up)

    while True:
        if replaying:
            # Everything up to `known` is committed before the read below starts, so the
            # read sees it all; then `scan` may safely jump to `known`. `follow` serves
            # from the feed's memory when it reaches back to `scan` (a reconnect storm
            # then costs no database read per client) and from `events_after` otherwise.
            known = waiter.head()
        elif pusher is not None:
            pushed = pusher.push(scope, scan, step, next_ping)
            scan = pushed.scan
            if pushed.ended or pushed.stop:
                return
            if pushed.wrote_at is not None:
                next_ping = max(next_ping, pushed.wrote_at + ping_interval)
            if pushed.behind:
                replaying = True
            elif clock() >= next_ping:
                yield from with_retry(format_ping(scan))
                next_ping = clock() + ping_interval
            continue
        else:
            remaining = max(0.0, next_ping - clock())
            known_or_stop = waiter.wait(scan, remaining)
            if known_or_stop is None:
                return
            known = known_or_stop
            if known <= scan:
                if clock() >= next_ping:
                    yield from with_retry(format_ping(scan))
                    next_ping = clock() + ping_interval
                continue
        result = steps.get(scope, scan, known, step) if steps is not None else step(scan, known)
        scan = result.scan
        if result.caught_up:
            replaying = False
        if result.text:
            if on_sent is not None:
                on_sent(result.sent)
            next_ping = clock() + ping_interval
            yield from with_retry(result.text)
        if result.ended:
            return


def plan_stream(
    store: Store,
    scope: Scope,
    cursor: int | None,
    *,
    snapshot: Callable[[Store, Scope], Snapshot] = read_snapshot,
    head: int = -1,
    finished: Callable[[Store, Scope, int], bool] = already_finished,
    compacted: Callable[[Store, Scope], int] | None = None,
) -> StreamPlan:
    """Check the scope exists and read what the stream starts from (snapshot or cursor).

    Raises UnknownJob / UnknownBatch for an unknown id. A cursor beyond the log's head (a
    client of a database since replaced) cannot be resumed, nor one older than a compaction
    of the scope (`Store.compaction_mark`: the events it would replay may be gone): such a
    stream starts from a snapshot instead, so the client is told the whole state again.
    `snapshot` reads it (`read_snapshot`, or a cache that shares one between streams
    starting together).
    `head`, when known (>= 0), is a log head already read (the feed's), saving a read
    for a cursor at or below it; `finished` answers `already_finished`, `compacted` the
    scope's compaction mark (`compaction_mark`, or a cache shared by a reconnect storm).
    """
    compacted = compacted or compaction_mark
    if (
        cursor is None
        or (cursor > head and cursor > store.last_event_id())
        or cursor < compacted(store, scope)
    ):
        return StreamPlan(scope, snapshot=snapshot(store, scope))
    return StreamPlan(scope, cursor=cursor, finished_at_cursor=finished(store, scope, cursor))
