"""The stream hub's parts: shared snapshots and streams of a signed-out session."""

from __future__ import annotations

import threading
import time

from progress import Store
from progress.sse import Scope, event_stream, plan_stream
from sheetbatch.web.sharing import FinishedCache, SnapshotCache
from sheetbatch.web.streams import StreamHub
from tests.support.factory import make_batch


def _batch(store: Store, n: int) -> str:
    return make_batch(store, n, pipeline="t", phases=["a"])[0]


def test_streams_starting_together_share_one_snapshot_read(store: Store) -> None:
    batch_id = _batch(store, 300)
    now = [0.0]
    cache = SnapshotCache(store, max_age=1.0, clock=lambda: now[0])
    scope = Scope(batch_id=batch_id)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache(store, scope))) for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.builds == 1 and len({id(s) for s in results}) == 1
    assert len(results[0].state["jobs"]) == 200  # bounded, whatever the batch's size
    now[0] = 5.0  # later arrivals get a fresh one
    later = cache(store, scope)
    assert cache.builds == 2 and later is not results[0]


def test_a_shared_snapshot_still_gives_each_stream_every_later_event(store: Store) -> None:
    batch_id = _batch(store, 2)
    cache = SnapshotCache(store)
    scope = Scope(batch_id=batch_id)
    first = plan_stream(store, scope, None, snapshot=cache)
    job = store.claim_next(batch_id, "w", 30)
    assert job is not None
    second = plan_stream(store, scope, None, snapshot=cache)  # within max_age: the same one
    assert second.snapshot is first.snapshot

    class Once:
        def __init__(self) -> None:
            self.calls = 0

        def head(self) -> int:
            return store.last_event_id()

        def wait(self, after: int, timeout: float) -> int | None:
            self.calls += 1
            return None if self.calls > 1 else store.last_event_id()

    text = "".join(event_stream(store, second, Once(), ping_interval=60))
    assert "event: job_started" in text  # committed after the snapshot's cursor: replayed


def test_signing_out_ends_the_sessions_streams_only(store: Store) -> None:
    hub = StreamHub(store)
    mine = hub.subscribe(session="k1")
    other = hub.subscribe(session="k2")
    bearer = hub.subscribe()
    assert hub.end_session("k1") == 1
    assert mine.wait(10**9, 0.01) is None  # told to stop
    assert other.gone is False and bearer.gone is False
    for sub in (mine, other, bearer):
        sub.close()
    hub.close()


def test_a_reconnect_storm_asks_the_store_once_whether_the_batch_finished(store: Store) -> None:
    batch_id = _batch(store, 1)
    now = [0.0]
    finished = FinishedCache(clock=lambda: now[0])
    scope = Scope(batch_id=batch_id)
    head = store.last_event_id()
    assert [finished(store, scope, head) for _ in range(1000)] == [False] * 1000
    assert finished.reads == 1
    job = store.claim_next(batch_id, "w", 30)
    assert job is not None
    store.fail_job(job["job_id"], phase="a", reason="boom", owner="w")  # finished after the read
    end = store.last_event_id()
    # A cursor past what the shared read saw is read again, so its `end` is not missed.
    assert finished(store, scope, end) is True and finished.reads == 2
    # A finished answer is never reused: a retry may reopen the batch right after.
    assert finished(store, scope, end) is True and finished.reads == 3
    assert finished(store, scope, head) is False  # it finished after that cursor: replayed
    now[0] = 5.0
    assert store.retry_batch(batch_id)  # reopened
    assert finished(store, scope, store.last_event_id()) is False


def test_the_shared_caches_are_let_go_after_the_last_stream_of_a_thinning_crowd(
    store: Store,
) -> None:
    hub = StreamHub(store)
    crowd = hub.snapshots
    first = hub.subscribe()
    first.close()  # nobody left for a moment: the wait for a quiet second begins
    time.sleep(0.4)
    late = hub.subscribe()  # one more visit during that wait
    time.sleep(0.3)
    assert hub.snapshots is crowd  # a stream is open: nothing is let go
    late.close()
    deadline = time.monotonic() + 10
    while hub.snapshots is crowd and time.monotonic() < deadline:
        time.sleep(0.05)
    # Dropped once the last visit had left a second ago, not forgotten because the first
    # wait ended while that visit was still recent.
    assert hub.snapshots is not crowd
    hub.close()
