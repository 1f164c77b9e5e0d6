"""Claims on the outbox: two senders never hold one notification at the same moment, a
dead sender's claim is taken over at once, and an attempt is recorded only by its claimer."""

from __future__ import annotations

import threading

from progress import Store
from progress.batch_writes import NewJob
from progress.notify_model import NotifyState, Targets

URLS = tuple(f"https://receiver{i}.example/hook" for i in range(12))


def _finished(store: Store) -> str:
    batch_id = store.create_batch(
        sheet="s.csv",
        pipeline="p",
        phases=["one"],
        jobs=[NewJob(row=2, inputs={})],
        options={"notify": Targets(URLS).to_json()},
    )
    job = store.claim_next(batch_id, "w", 30)
    assert job is not None
    store.succeed_job(job["job_id"], {}, owner="w")
    return batch_id


def test_concurrent_senders_claim_disjoint_notifications(store: Store) -> None:
    _finished(store)
    got: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def claim(owner: str) -> None:
        start.wait()
        mine: list[str] = []
        while batch := store.claim_notifications(owner, claim_seconds=60, limit=2):
            mine += [d.id for d in batch]
        got[owner] = mine

    threads = [threading.Thread(target=claim, args=(f"sender-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    claimed = [i for ids in got.values() for i in ids]
    assert len(claimed) == len(URLS) == len(set(claimed))  # each once, by one sender
    # A held claim is not claimed again, even ignoring backoff.
    assert store.claim_notifications("late", claim_seconds=60, ignore_backoff=True) == []


def test_a_dead_senders_claim_is_taken_over_and_its_late_outcome_not_recorded(
    store: Store,
) -> None:
    batch_id = _finished(store)
    import socket

    dead = f"{socket.gethostname()}:999999999:abc"  # a pid that does not exist
    first = store.claim_notifications(dead, claim_seconds=600, limit=100)
    assert len(first) == len(URLS)
    taken = store.claim_notifications("me", claim_seconds=60, limit=100)
    assert {d.id for d in taken} == {d.id for d in first}
    attempt = {"time": None, "status": 200, "error": None, "duration": 0.1}
    assert not store.record_attempt(first[0].id, dead, attempt, NotifyState.DELIVERED)
    assert store.record_attempt(taken[0].id, "me", attempt, NotifyState.DELIVERED)
    states = {d.id: d.state for d in store.notifications(batch_id=batch_id)}
    assert states[taken[0].id] is NotifyState.DELIVERED
    assert list(states.values()).count(NotifyState.PENDING) == len(URLS) - 1
