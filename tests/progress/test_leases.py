"""Named leases: one holder at a time, epochs that grow on takeover, fenced writes refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from progress import Store, open_store
from progress.errors import NotLeader
from progress.schedule_model import Fence, NewSchedule, PlannedTick, TickState


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clocked(db_url: str, clock: Clock) -> Iterator[Store]:
    store = open_store(db_url, clock=clock, poll_interval=0.05)
    try:
        yield store
    finally:
        store.close()


def test_one_holder_at_a_time_and_a_new_epoch_on_takeover(clocked: Store, clock: Clock) -> None:
    assert clocked.acquire_lease("leader", "a", 10) == 1
    assert clocked.acquire_lease("leader", "b", 10) is None
    assert clocked.acquire_lease("leader", "a", 10) == 1  # renewing one's own: same epoch
    clock.now += 5
    assert clocked.renew_lease("leader", "a", 10) == 1
    clock.now += 9  # still held: renewed 9 s ago with a 10 s TTL
    assert clocked.acquire_lease("leader", "b", 10) is None
    clock.now += 2  # expired
    assert clocked.acquire_lease("leader", "b", 10) == 2
    assert clocked.renew_lease("leader", "a", 10) is None  # a lost it and is told so
    lease = clocked.lease("leader")
    assert lease is not None and lease.owner == "b" and lease.epoch == 2


def test_a_released_lease_is_taken_at_once(clocked: Store) -> None:
    assert clocked.acquire_lease("leader", "a", 30) == 1
    assert clocked.release_lease("leader", "a")
    assert not clocked.release_lease("leader", "a")
    assert clocked.acquire_lease("leader", "b", 30) == 2


def test_a_stale_leaders_fenced_write_is_refused_and_changes_nothing(
    clocked: Store, clock: Clock
) -> None:
    sid = clocked.create_schedule(
        NewSchedule(name="n", sheet="s.csv", pipeline="company", trigger={"kind": "interval"})
    ).schedule_id
    old = Fence("leader", "a", clocked.acquire_lease("leader", "a", 10) or 0)
    clock.now += 11
    new = Fence("leader", "b", clocked.acquire_lease("leader", "b", 10) or 0)
    due = [PlannedTick(clock.now - 1, TickState.MISSED)]
    head = clocked.last_event_id()
    with pytest.raises(NotLeader):
        clocked.record_ticks(sid, due, scheduler="a", guard=old, cursor=clock.now)
    assert clocked.ticks(sid) == []
    assert clocked.schedule(sid).cursor < clock.now
    assert clocked.last_event_id() == head
    made = clocked.record_ticks(sid, due, scheduler="b", guard=new, cursor=clock.now)
    assert [t.epoch for t in made] == [new.epoch]


def test_an_expired_but_not_taken_lease_refuses_fenced_writes_until_renewed(
    clocked: Store, clock: Clock
) -> None:
    sid = clocked.create_schedule(
        NewSchedule(name="n", sheet="s.csv", pipeline="company", trigger={"kind": "interval"})
    ).schedule_id
    guard = Fence("leader", "a", clocked.acquire_lease("leader", "a", 10) or 0)
    clock.now += 11
    with pytest.raises(NotLeader):
        clocked.advance_cursor(sid, clock.now, guard)
    assert clocked.renew_lease("leader", "a", 10) == guard.epoch
    clocked.advance_cursor(sid, clock.now, guard)
    assert clocked.schedule(sid).cursor == clock.now
