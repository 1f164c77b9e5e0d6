"""PostgreSQL: a commit by one store wakes the waiters of another at once (LISTEN/NOTIFY).

Every store here polls the head only once a minute, so a waiter that wakes within a second
was woken by the notification (or by the listener's read of the head when it reconnects),
never by the poll.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from progress import Store, open_store
from progress.batch_writes import NewJob
from tests.support.databases import PG_URL

pytestmark = pytest.mark.postgres

NEVER = 60.0  # seconds: a poll that never comes within a test
PROMPT = 1.0  # seconds: well below the 2 s fallback poll, far above a notification's delay


@pytest.fixture
def named_pg(pg_db: str) -> tuple[str, str]:
    """The test's schema URL with an application_name only its own connections carry."""
    name = "sb_notify_" + secrets.token_hex(4)
    return f"{pg_db}&application_name={name}", name


@pytest.fixture
def writer(named_pg: tuple[str, str]) -> Iterator[Store]:
    store = open_store(named_pg[0], poll_interval=NEVER, fallback_poll=NEVER)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def reader(named_pg: tuple[str, str]) -> Iterator[Store]:
    """A second store on the same schema: its own engine, feed and LISTEN connection."""
    store = open_store(named_pg[0], poll_interval=NEVER, fallback_poll=NEVER)
    try:
        yield store
    finally:
        store.close()


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    )


def listen_pids(application_name: str) -> list[int]:
    """The backends of this test's connections that LISTEN."""
    with _admin() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND query ILIKE 'LISTEN %%'",
            (application_name,),
        ).fetchall()
    return [int(row[0]) for row in rows]


def wait_until(predicate: object, timeout: float = 30.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        time.sleep(0.02)


def listening_feed(store: Store) -> int:
    """Start the store's feed and wait until its listener is up; the head it knows."""
    head = store.feed.head()
    wait_until(lambda: store.feed.listening)
    return head


def commit_and_time_the_wake(writer: Store, reader: Store, after: int) -> tuple[float, int]:
    """Append an event through `writer` while a thread waits on `reader`; (seconds from the
    commit to the waiter's wake-up, the head the waiter saw)."""
    woke: list[tuple[float, int]] = []
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        head = reader.wait(after, timeout=NEVER / 2)
        woke.append((time.monotonic(), head))

    thread = threading.Thread(target=wait)
    thread.start()
    waiting.wait(10)
    time.sleep(0.05)  # let the waiter block
    writer.create_batch(sheet="s", pipeline="p", phases=["a"], jobs=[NewJob(2, {})])
    committed = time.monotonic()
    thread.join(NEVER)
    assert woke, "the waiter never woke"
    at, head = woke[0]
    return at - committed, head


def test_a_commit_by_another_store_wakes_waiters_at_once(writer: Store, reader: Store) -> None:
    after = listening_feed(reader)
    for _ in range(3):
        seconds, head = commit_and_time_the_wake(writer, reader, after)
        assert head > after and head == writer.last_event_id()
        assert seconds < PROMPT, f"woke {seconds:.3f} s after the commit"
        after = head
    # The waiter's store reads the new events from the log (the notification is only a hint).
    events = reader.events_after(0, limit=100)
    assert [e["id"] for e in events] == list(range(1, after + 1))


def test_the_feed_relistens_after_its_connection_is_killed(
    writer: Store, reader: Store, named_pg: tuple[str, str]
) -> None:
    name = named_pg[1]
    after = listening_feed(reader)
    (first,) = listen_pids(name)  # one LISTEN connection: the reader's (the writer never follows)
    with _admin() as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (first,))
    # Committed while the listener may still be down: the reconnect's read of the head
    # finds it (nothing is lost with a notification), long before the minute's poll.
    writer.create_batch(sheet="s", pipeline="p", phases=["a"], jobs=[NewJob(2, {})])
    head = reader.wait(after, timeout=NEVER / 2)
    assert head == writer.last_event_id() > after
    wait_until(lambda: len(listen_pids(name)) == 1 and listen_pids(name) != [first])
    wait_until(lambda: reader.feed.listening)
    # Listening again: later commits wake the waiter at once.
    seconds, later = commit_and_time_the_wake(writer, reader, head)
    assert later > head
    assert seconds < PROMPT, f"woke {seconds:.3f} s after the commit"


def test_each_schema_has_its_own_channel(
    writer: Store, reader: Store, named_pg: tuple[str, str]
) -> None:
    # The channel is named after the database and schema: stores on other schemas of the
    # same server (one per test, one per tenant) are not woken by this one's commits.
    # A wake-up there would be harmless (the feed reads its own log's head), but wasted.
    from tests.support.databases import postgres_schema_url

    name = named_pg[1]
    listening_feed(reader)
    for other_url in postgres_schema_url():
        other = open_store(f"{other_url}&application_name={name}", fallback_poll=NEVER)
        try:
            listening_feed(other)
            with _admin() as conn:
                rows = conn.execute(
                    "SELECT query FROM pg_stat_activity WHERE application_name = %s"
                    " AND query ILIKE 'LISTEN %%'",
                    (name,),
                ).fetchall()
            channels = sorted(str(row[0]) for row in rows)
            assert len(channels) == 2 and channels[0] != channels[1], channels
        finally:
            other.close()
