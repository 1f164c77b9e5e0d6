"""The SSE wire format, the exact snapshot, and the stream generator over a real store."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from progress import Store
from progress.sse import (
    Scope,
    StreamPlan,
    already_finished,
    event_stream,
    plan_stream,
    read_snapshot,
)
from progress.sse_wire import (
    SSE_HEADERS,
    format_event,
    format_ping,
    format_retry,
    jittered_retry,
    parse_cursor,
)
from progress.status import EventType
from tests.support.factory import make_batch

PHASES = ["resolve", "crawl", "extract", "score"]


class StoreWaiter:
    """The simplest waiter: straight on the store's feed (the web hub adds per-stream wakeups)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stop = False

    def head(self) -> int:
        return self.store.feed.head()

    def wait(self, after: int, timeout: float) -> int | None:
        if self.stop:
            return None
        return self.store.wait(after, min(timeout, 0.2))


def parse(text: str) -> list[dict[str, Any]]:
    """SSE text as a list of messages: {id, event, data, comments}."""
    out = []
    for block in text.split("\n\n"):
        if not block:
            continue
        message: dict[str, Any] = {"id": None, "event": "message", "data": None, "comments": []}
        for line in block.split("\n"):
            if line.startswith(":"):
                message["comments"].append(line[1:].strip())
                continue
            name, _, value = line.partition(": ")
            if name == "data":
                message["data"] = json.loads(value)
            elif name in ("id", "event", "retry"):
                message[name] = value
        if message["data"] is not None:  # as EventSource: a block without data is not dispatched
            out.append(message)
    return out


def new_batch(store: Store, n: int = 3, *, prefix: str = "r") -> tuple[str, list[str]]:
    return make_batch(store, n, sheet=f"{prefix}.csv", phases=PHASES, prefix=prefix)


def drive(store: Store, job_id: str, *, fail: bool = False) -> None:
    """Take one job through every phase to its end, as a worker would."""
    store.start_job(job_id, "tester", 30)
    for index, name in enumerate(PHASES, start=1):
        store.phase_started(job_id, index, len(PHASES), name)
        store.phase_progress(job_id, 0.5, "half")
        if fail and name == "crawl":
            store.fail_job(job_id, phase=name, reason="connection refused")
            return
        store.phase_finished(job_id, seconds=0.01)
    store.succeed_job(job_id, {"Name": job_id})


def collect(chunks: Iterator[str]) -> str:
    return "".join(chunks)


# --------------------------------------------------------------------------- format
def test_format_event_is_one_message_with_id_type_and_json_data() -> None:
    text = format_event(42, "job_started", {"a": "line1\nline2", "b": None})
    assert text.endswith("\n\n")
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "id: 42"
    assert lines[1] == "event: job_started"
    assert lines[2].startswith("data: ")
    assert len(lines) == 3  # newlines inside values are escaped by JSON
    assert json.loads(lines[2][6:]) == {"a": "line1\nline2", "b": None}


def test_ping_is_a_comment_plus_an_id_less_event() -> None:
    [message] = parse(format_ping(7))
    assert message["comments"] == ["ping"]
    assert message["event"] == "ping"
    assert message["id"] is None
    assert message["data"] == {"cursor": 7}
    assert format_retry(1500) == "retry: 1500\n"


def test_headers_forbid_caching_and_proxy_buffering() -> None:
    assert SSE_HEADERS["Content-Type"].startswith("text/event-stream")
    assert SSE_HEADERS["Cache-Control"] == "no-cache"
    assert SSE_HEADERS["X-Accel-Buffering"] == "no"


@pytest.mark.parametrize(
    ("raw", "cursor"), [(None, None), ("", None), (" ", None), ("0", 0), ("17", 17)]
)
def test_parse_cursor_accepts_non_negative_integers(raw: str | None, cursor: int | None) -> None:
    assert parse_cursor(raw) == cursor


@pytest.mark.parametrize("raw", ["-1", "1.5", "abc", "١٢", "9" * 20, "0x10"])
def test_parse_cursor_refuses_anything_else(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_cursor(raw)


def test_scopes_match_and_end_on_their_own_events() -> None:
    job = {"batch_id": "b1", "job_id": "j1", "type": EventType.JOB_FAILED.value}
    other = {"batch_id": "b2", "job_id": "j2", "type": EventType.JOB_SUCCEEDED.value}
    finished = {"batch_id": "b1", "job_id": None, "type": EventType.BATCH_FINISHED.value}
    assert Scope(job_id="j1").matches(job) and not Scope(job_id="j1").matches(other)
    assert Scope(job_id="j1").ends_with(job) and not Scope(job_id="j1").ends_with(other)
    assert Scope(batch_id="b1").ends_with(finished) and not Scope(batch_id="b1").ends_with(job)
    assert Scope().matches(other) and not Scope().ends_with(finished)
    assert [Scope(job_id="x").kind, Scope(batch_id="y").kind, Scope().kind] == [
        "job",
        "batch",
        "all",
    ]


# --------------------------------------------------------------------------- snapshot
def test_snapshot_of_a_queued_job_is_not_finished(store: Store) -> None:
    _, [job_id] = new_batch(store, 1)
    snap = read_snapshot(store, Scope(job_id=job_id))
    assert snap.state["job"]["status"] == "queued"
    assert not snap.finished
    assert snap.cursor == store.last_event_id()
    assert snap.message()["cursor"] == snap.cursor


def test_snapshot_is_exact_while_writers_run(store: Store) -> None:
    """Every snapshot equals the log folded up to its cursor, however busy the writers are."""
    batch_id, job_ids = new_batch(store, 12)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i, job_id in enumerate(job_ids):
                drive(store, job_id, fail=i % 4 == 0)
                time.sleep(0.005)  # let the reader in between jobs, however the GIL falls
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    snapshots = []
    while writer.is_alive():
        snapshots.append(read_snapshot(store, Scope(batch_id=batch_id)))
    writer.join()
    assert not errors
    snapshots.append(read_snapshot(store, Scope(batch_id=batch_id)))
    assert len(snapshots) >= 3
    log = store.events_after(0, batch_id=batch_id, limit=100_000)
    for snap in snapshots:
        # The state at the cursor: every job's newest row-changing event at or before it.
        newest: dict[str, int] = {}
        status: dict[str, str] = {}
        for event in log:
            if event["id"] > snap.cursor:
                break
            if event["job_id"] and event["type"] != EventType.JOB_NOTE.value:
                newest[event["job_id"]] = event["id"]
                status[event["job_id"]] = event["data"]["status"]
        jobs = {j["job_id"]: j for j in snap.state["jobs"]}
        assert {k: j["last_event_id"] for k, j in jobs.items()} == newest
        assert {k: j["status"] for k, j in jobs.items()} == status
        assert snap.state["batch"]["last_event_id"] <= snap.cursor
        counts = snap.state["batch"]["counts"]
        assert sum(counts.values()) == len(job_ids)
        assert counts["succeeded"] == sum(1 for s in status.values() if s == "succeeded")


def test_unknown_ids_raise_before_any_stream(store: Store) -> None:
    from progress.errors import UnknownBatch, UnknownJob

    with pytest.raises(UnknownJob):
        plan_stream(store, Scope(job_id="j-missing"), None)
    with pytest.raises(UnknownBatch):
        plan_stream(store, Scope(batch_id="b-missing"), 3)


# --------------------------------------------------------------------------- stream
def test_batch_stream_is_snapshot_then_every_event_then_end(store: Store) -> None:
    batch_id, job_ids = new_batch(store, 3)
    plan = plan_stream(store, Scope(batch_id=batch_id), None)
    waiter = StoreWaiter(store)
    out: list[str] = []
    reader = threading.Thread(
        target=lambda: out.extend(event_stream(store, plan, waiter, ping_interval=30))
    )
    reader.start()
    for i, job_id in enumerate(job_ids):
        drive(store, job_id, fail=i == 1)
    reader.join(10)
    assert not reader.is_alive(), "the stream did not end after batch_finished"
    messages = parse("".join(out))
    assert messages[0]["retry"] == "2000"  # sent once, with the first message
    assert all("retry" not in m for m in messages[1:])
    snapshot, *events, end = messages
    assert snapshot["event"] == "snapshot"
    assert int(snapshot["id"]) == snapshot["data"]["cursor"] == plan.snapshot.cursor  # type: ignore[union-attr]
    log = store.events_after(int(snapshot["id"]), batch_id=batch_id, limit=10_000)
    assert [int(m["id"]) for m in events] == [e["id"] for e in log]
    assert [m["event"] for m in events] == [e["type"] for e in log]
    assert [m["data"] for m in events] == log
    assert events[-1]["event"] == "batch_finished"
    assert end["event"] == "end" and end["id"] == events[-1]["id"]


def test_resume_replays_exactly_the_events_after_the_cursor(store: Store) -> None:
    batch_id, job_ids = new_batch(store, 2)
    _, other_jobs = new_batch(store, 2, prefix="o")
    drive(store, job_ids[0])
    drive(store, other_jobs[0])
    log = store.events_after(0, batch_id=batch_id, limit=10_000)
    cursor = log[3]["id"]
    drive(store, job_ids[1])
    drive(store, other_jobs[1])
    plan = plan_stream(store, Scope(batch_id=batch_id), cursor)
    text = collect(event_stream(store, plan, StoreWaiter(store), ping_interval=30, page=3))
    messages = [m for m in parse(text) if m["event"] not in ("end",) and m["id"]]
    expected = store.events_after(cursor, batch_id=batch_id, limit=10_000)
    assert [m["data"] for m in messages] == expected
    assert all(m["data"]["batch_id"] == batch_id for m in messages)


def test_a_finished_job_gives_snapshot_and_end_at_once(store: Store) -> None:
    _, [job_id] = new_batch(store, 1)
    drive(store, job_id, fail=True)
    messages = parse(
        collect(
            event_stream(
                store,
                plan_stream(store, Scope(job_id=job_id), None),
                StoreWaiter(store),
                ping_interval=30,
            )
        )
    )
    assert [m["event"] for m in messages] == ["snapshot", "end"]
    assert messages[0]["data"]["job"]["status"] == "failed"
    # Resuming after the terminal event: end at once, nothing replayed.
    cursor = store.last_event_id()
    assert already_finished(store, Scope(job_id=job_id), cursor)
    resumed = parse(
        collect(
            event_stream(
                store,
                plan_stream(store, Scope(job_id=job_id), cursor),
                StoreWaiter(store),
                ping_interval=30,
            )
        )
    )
    assert [m["event"] for m in resumed] == ["end"]


def test_job_stream_ends_after_its_terminal_event_even_when_resumed_before_it(store: Store) -> None:
    _, [job_id, other] = new_batch(store, 2)
    store.start_job(job_id, "tester", 30)
    cursor = store.last_event_id()
    drive(store, other)
    store.phase_started(job_id, 1, 4, "resolve")
    store.fail_job(job_id, phase="resolve", reason="dns")
    plan = plan_stream(store, Scope(job_id=job_id), cursor)
    assert not plan.finished_at_cursor
    messages = parse(collect(event_stream(store, plan, StoreWaiter(store), ping_interval=30)))
    assert [m["event"] for m in messages] == ["phase_started", "job_failed", "end"]
    assert messages[0]["retry"] == "2000"
    assert all(m["data"]["job_id"] == job_id for m in messages[:-1])


def test_idle_stream_pings_and_stops_when_the_waiter_says_so(store: Store) -> None:
    _, [job_id] = new_batch(store, 1)
    waiter = StoreWaiter(store)
    chunks = event_stream(
        store, plan_stream(store, Scope(job_id=job_id), None), waiter, ping_interval=0.05
    )
    retry, first = next(chunks), next(chunks)
    assert retry == "retry: 2000\n" and "event: snapshot" in first
    assert parse(next(chunks))[0]["event"] == "ping"
    waiter.stop = True
    assert list(chunks) == []


def test_streams_starting_from_one_snapshot_send_its_very_text(store: Store) -> None:
    # A crowd of dashboards opening together shares one snapshot: each stream's own
    # `retry:` goes out before it, so the text (and its encoded bytes) is held once, not
    # once per stream.
    batch_id, _ = new_batch(store, 3)
    plan = plan_stream(store, Scope(batch_id=batch_id), None)
    assert plan.snapshot is not None
    firsts = []
    for retry_ms in (1200, 2600):
        chunks = event_stream(store, plan, StoreWaiter(store), ping_interval=5, retry_ms=retry_ms)
        assert next(chunks) == f"retry: {retry_ms}\n"
        firsts.append(next(chunks))
    assert firsts[0] is firsts[1] is plan.snapshot.text
    messages = parse("retry: 1200\n" + firsts[0])
    assert messages[0]["retry"] == "1200" and messages[0]["event"] == "snapshot"


def test_plan_from_a_cursor_reads_no_snapshot(store: Store) -> None:
    batch_id, _ = new_batch(store, 1)
    plan = plan_stream(store, Scope(batch_id=batch_id), 0)
    assert plan == StreamPlan(Scope(batch_id=batch_id), cursor=0, finished_at_cursor=False)


def test_a_cursor_from_the_future_gets_a_snapshot(store: Store) -> None:
    batch_id, _ = new_batch(store, 2)
    plan = plan_stream(store, Scope(batch_id=batch_id), store.last_event_id() + 100)
    assert plan.snapshot is not None and plan.cursor is None
    assert len(plan.snapshot.state["jobs"]) == 2


# --------------------------------------------------------------------------- bounded snapshots
def test_a_batch_snapshot_is_bounded_and_says_where_the_rest_is(store: Store) -> None:
    batch_id, ids = new_batch(store, 7)
    snap = read_snapshot(store, Scope(batch_id=batch_id), rows=3)
    assert [j["job_id"] for j in snap.state["jobs"]] == ids[:3]
    assert snap.state["batch"]["total"] == 7
    assert snap.state["jobs_next_cursor"] == f"{batch_id}.{snap.state['jobs'][-1]['row']}"
    # The rest, paged from that cursor, is exactly what the snapshot left out.
    b, _, r = snap.state["jobs_next_cursor"].rpartition(".")
    rest = store.jobs(batch_id=batch_id, after_row=(b, int(r)))
    assert [j["job_id"] for j in rest] == ids[3:]
    whole = read_snapshot(store, Scope(batch_id=batch_id), rows=7)
    assert whole.state["jobs_next_cursor"] is None and len(whole.state["jobs"]) == 7


def test_the_snapshot_text_is_formatted_once(store: Store) -> None:
    batch_id, _ = new_batch(store, 2)
    snap = read_snapshot(store, Scope(batch_id=batch_id))
    assert snap.text is snap.text
    [message] = parse(snap.text)
    assert message["event"] == "snapshot" and message["id"] == str(snap.cursor)
    assert message["data"]["cursor"] == snap.cursor


def test_a_jittered_retry_stays_within_its_spread_and_averages_the_base() -> None:
    assert jittered_retry(2000, 0.5, 0.0) == 1000
    assert jittered_retry(2000, 0.5, 0.5) == 2000
    assert jittered_retry(2000, 0.5, 0.999999) == 3000
    assert jittered_retry(2000, 0.0, 0.9) == 2000  # no spread: the base
    assert jittered_retry(2000, 5.0, 0.0) == 1  # a spread beyond 1 is capped; never 0 ms
    draws = [i / 100 for i in range(100)]
    assert sum(jittered_retry(2000, 0.5, d) for d in draws) / len(draws) == pytest.approx(
        2000, abs=15
    )
