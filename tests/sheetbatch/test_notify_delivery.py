"""Delivering notifications to a real receiver on 127.0.0.1: retries, signatures, 410,
timeouts, Retry-After, the SSRF guard and Slack's format.

The batches are real store batches whose last transition records the notification; the
notifier runs in-process on an injected clock (its sleep moves the clock), so backoff costs
no real waiting, while every request is a real HTTP request to a real server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence

import pytest
import standardwebhooks

from progress import Store, open_store
from progress.batch_writes import NewJob
from progress.notify_model import NotifyState, Targets
from sheetbatch.notifier import Notifier, RetryPolicy, decide
from sheetbatch.webhook_client import Response, WebhookClient
from sheetbatch.webhooks import Signer, body_for
from tests.support.receiver import Receiver, free_port
from tests.support.schedules import Clock

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def clock() -> Clock:
    import time

    # Near the real time: the reference library refuses timestamps 5 minutes off.
    return Clock(time.time())


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[Store]:
    s = open_store(db_url, clock=clock, poll_interval=0.05)
    try:
        yield s
    finally:
        s.close()


def finished_batch(
    store: Store,
    urls: Sequence[str],
    *,
    failed: Sequence[int] = (),
    events: Sequence[str] | None = None,
) -> str:
    """A 3-row batch run to its end through the store's transitions (rows in `failed` fail)."""
    batch_id = store.create_batch(
        sheet="leads.csv",
        pipeline="quick",
        phases=["one"],
        jobs=[NewJob(row=r, inputs={}, label=f"Company {r}") for r in (2, 3, 4)],
        options={
            "notify": Targets(tuple(urls), None if events is None else tuple(events)).to_json()
        },
    )
    while (job := store.claim_next(batch_id, "w", 30)) is not None:
        if job["row"] in failed:
            store.fail_job(job["job_id"], phase="one", reason="connection refused", owner="w")
        else:
            store.succeed_job(job["job_id"], {}, owner="w")
    return batch_id


def notifier(
    store: Store,
    clock: Clock,
    *allow: str,
    timeout: float = 5.0,
    secret: str = SECRET,
    **more: object,
) -> Notifier:
    def sleep(seconds: float) -> None:
        clock.now += seconds

    return Notifier(
        store,
        WebhookClient(allow_hosts=allow, timeout=timeout, **more),  # type: ignore[arg-type]
        signer=Signer(secret),
        clock=clock,
        sleep=sleep,
        rng=lambda: 0.5,
    )


def test_the_notification_is_recorded_with_the_batch_outcome_and_only_for_its_targets(
    store: Store,
) -> None:
    batch_id = store.create_batch(
        sheet="leads.csv",
        pipeline="quick",
        phases=["one"],
        jobs=[NewJob(row=2, inputs={}, label="Acme"), NewJob(row=3, inputs={}, label="Initech")],
        options={"notify": Targets(("https://a.example/h", "https://b.example/h")).to_json()},
    )
    first = store.claim_next(batch_id, "w", 30)
    assert first is not None
    store.fail_job(first["job_id"], phase="resolve", reason="connection refused", owner="w")
    assert store.notifications(batch_id=batch_id) == []  # no outcome yet, no notification
    second = store.claim_next(batch_id, "w", 30)
    assert second is not None
    store.succeed_job(second["job_id"], {}, owner="w")
    made = sorted(store.notifications(batch_id=batch_id), key=lambda d: d.url)
    assert [(d.type, d.url, d.state) for d in made] == [
        ("batch.failed", "https://a.example/h", NotifyState.PENDING),
        ("batch.failed", "https://b.example/h", NotifyState.PENDING),
    ]
    data = made[0].data
    assert data["counts"] == {"succeeded": 1, "failed": 1, "cancelled": 0}
    assert data["failed_rows"] == [
        {"row": 2, "label": "Acme", "error": "resolve: connection refused"}
    ]
    assert data["sheet"] == "leads.csv" and data["status"] == "completed"
    assert made[0].id != made[1].id
    # No targets, or a type filtered out: nothing recorded.
    assert store.notifications(batch_id=finished_batch(store, [])) == []
    quiet = finished_batch(store, ["https://a.example/h"], events=["batch.failed"])
    assert store.notifications(batch_id=quiet) == []


def test_a_receiver_failing_twice_gets_the_same_signed_notification_until_it_accepts(
    sqlite_db: str, clock: Clock
) -> None:
    hook = Receiver([500, 500, 200])
    store = open_store(sqlite_db, clock=clock)
    try:
        batch_id = finished_batch(store, [hook.url], failed=[3])
        start = clock.now
        sender = notifier(store, clock, hook.allow)
        assert sender.drain_batch(batch_id, within=60)
        (delivery,) = store.notifications(batch_id=batch_id)
    finally:
        store.close()
        hook.close()
    assert delivery.state is NotifyState.DELIVERED
    assert [a["status"] for a in delivery.attempts] == [500, 500, 200]
    requests = hook.requests
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {delivery.id}
    verifier = standardwebhooks.Webhook(SECRET)
    for request in requests:
        body = verifier.verify(request.body, request.headers)
        assert body["type"] == "batch.failed"
        assert body["data"]["batch_id"] == batch_id
        assert body["data"]["failed_rows"][0]["row"] == 3
    stamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert stamps[1] - stamps[0] <= 10  # the first retry comes within 10 s
    assert stamps[2] - stamps[1] > stamps[1] - stamps[0]  # then later each time
    assert stamps[0] >= int(start)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        verifier.verify(requests[0].body + b" ", requests[0].headers)


def test_a_receiver_that_is_down_then_up_gets_it_when_it_is_up(
    sqlite_db: str, clock: Clock
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    store = open_store(sqlite_db, clock=clock)
    try:
        batch_id = finished_batch(store, [url])
        sender = notifier(store, clock, f"127.0.0.1:{port}")
        assert sender.drain() != {}
        (down,) = store.notifications(batch_id=batch_id)
        assert down.state is NotifyState.PENDING
        assert down.attempts[0]["status"] is None
        assert down.attempts[0]["error"] == "connection refused"
        hook = Receiver(port=port)
        try:
            assert sender.drain_batch(batch_id, within=60)
        finally:
            hook.close()
        (up,) = store.notifications(batch_id=batch_id)
    finally:
        store.close()
    assert up.state is NotifyState.DELIVERED and len(up.attempts) == 2
    assert hook.requests[0].headers["webhook-id"] == up.id


def test_410_disables_the_url_and_other_4xx_fail_at_once(sqlite_db: str, clock: Clock) -> None:
    gone = Receiver([410])
    bad = Receiver([("status", 400, {})])
    store = open_store(sqlite_db, clock=clock)
    try:
        first = finished_batch(store, [gone.url, bad.url])
        sender = notifier(store, clock, gone.allow, bad.allow)
        sender.drain()
        states = {d.url: (d.state, len(d.attempts)) for d in store.notifications(batch_id=first)}
        assert states == {gone.url: (NotifyState.DISABLED, 1), bad.url: (NotifyState.FAILED, 1)}
        assert gone.url in store.disabled_urls()
        later = finished_batch(store, [gone.url])
        (disabled,) = store.notifications(batch_id=later)
        assert disabled.state is NotifyState.DISABLED
        assert sender.drain() == {}
    finally:
        store.close()
        gone.close()
        bad.close()
    assert len(gone.requests) == 1 and len(bad.requests) == 1  # never sent again


def test_a_slow_receiver_times_out_and_retry_after_is_honoured(
    sqlite_db: str, clock: Clock
) -> None:
    slow = Receiver([("hang", 5.0)])
    busy = Receiver([("status", 429, {"Retry-After": "120"})])
    store = open_store(sqlite_db, clock=clock)
    try:
        batch_id = finished_batch(store, [slow.url, busy.url])
        sender = notifier(store, clock, slow.allow, busy.allow, timeout=0.5)
        now = clock.now
        sender.drain()
        got = {d.url: d for d in store.notifications(batch_id=batch_id)}
    finally:
        store.close()
        slow.close()
        busy.close()
    timed_out = got[slow.url]
    assert timed_out.state is NotifyState.PENDING
    assert timed_out.attempts[0]["error"] == "timed out after 0.5 s"
    assert timed_out.attempts[0]["duration"] < 3
    assert timed_out.next_attempt <= now + 10
    throttled = got[busy.url]
    assert throttled.attempts[0]["status"] == 429
    assert throttled.next_attempt >= now + 120


def test_webhook_urls_on_private_addresses_are_refused_unless_allowed(
    sqlite_db: str, clock: Clock
) -> None:
    receiver = Receiver()
    store = open_store(sqlite_db, clock=clock)
    try:
        batch_id = finished_batch(store, [receiver.url])
        notifier(store, clock).drain()  # no --allow-host
        (refused,) = store.notifications(batch_id=batch_id)
    finally:
        store.close()
        receiver.close()
    assert refused.state is NotifyState.FAILED
    assert refused.attempts[0]["error"] == (
        "refused: blocked loopback address 127.0.0.1 (allow it with --allow-host)"
    )
    assert receiver.requests == []


def test_backoff_grows_with_jitter_and_gives_up_after_max_age() -> None:
    policy = RetryPolicy(max_age=3600)
    failed = Response(500, "HTTP 500", 0.1)
    waits = [
        decide(failed, attempts=n, since=0, now=0, policy=policy, rng=lambda: 1.0).next_attempt
        for n in range(1, 6)
    ]
    assert waits == [5, 10, 20, 40, 80]
    low = decide(failed, attempts=1, since=0, now=0, policy=policy, rng=lambda: 0.0)
    assert low.next_attempt == 2.5
    late = decide(failed, attempts=9, since=0, now=3500, policy=policy, rng=lambda: 1.0)
    assert late.state is NotifyState.FAILED
    for status in (408, 429, 503):
        retried = decide(
            Response(status, "x", 0.1), attempts=1, since=0, now=0, policy=policy, rng=lambda: 1
        )
        assert retried.state is NotifyState.PENDING


def test_a_slack_url_gets_slacks_message_format(sqlite_db: str, clock: Clock) -> None:
    hook = Receiver()
    url = f"http://hooks.slack.com:{hook.port}/services/T000/B000/XXXX"
    store = open_store(sqlite_db, clock=clock)
    try:
        batch_id = finished_batch(store, [url], failed=[2, 4])
        sender = notifier(store, clock, "hooks.slack.com", resolve=lambda host, port: ["127.0.0.1"])
        sender.public_url = "https://sheetbatch.example.com/"
        assert sender.drain_batch(batch_id, within=10)
        (delivery,) = store.notifications(batch_id=batch_id)
    finally:
        store.close()
        hook.close()
    message = hook.requests[0].json()
    # api.slack.com/messaging/webhooks: a `text` (the notification's fallback) and Block Kit
    # blocks; a section's mrkdwn text is at most 3,000 characters, a message 50 blocks.
    assert set(message) == {"text", "blocks"}
    assert message["text"].startswith(f"Batch {batch_id} completed (batch.failed): 3 rows")
    assert 1 <= len(message["blocks"]) <= 50
    for block in message["blocks"]:
        assert block["type"] == "section"
        assert block["text"]["type"] == "mrkdwn" and len(block["text"]["text"]) <= 3000
    assert (
        f"<https://sheetbatch.example.com/batches/{batch_id}|"
        in message["blocks"][0]["text"]["text"]
    )
    rows = message["blocks"][1]["text"]["text"]
    assert "row 2 Company 2: one: connection refused" in rows and "row 4" in rows
    assert delivery.state is NotifyState.DELIVERED


def test_the_webhook_body_is_type_timestamp_and_data_with_a_link(store: Store) -> None:
    batch_id = finished_batch(store, ["https://a.example/h"])
    (delivery,) = store.notifications(batch_id=batch_id)
    body = json.loads(body_for(delivery, "https://sb.example.com"))
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "batch.completed"
    data = body["data"]
    assert data["url"] == f"https://sb.example.com/batches/{batch_id}"
    assert data["total"] == 3 and data["counts"]["succeeded"] == 3 and data["failed_rows"] == []
    assert {"started", "finished", "elapsed", "pipeline", "sheet", "schedule_id", "tick_id"} <= set(
        data
    )


def test_at_most_64_kb_of_an_answer_is_read(sqlite_db: str, clock: Clock) -> None:
    huge = Receiver([("status", 200, {}, b"x" * 50_000_000)])
    store = open_store(sqlite_db, clock=clock)
    try:
        batch_id = finished_batch(store, [huge.url])
        notifier(store, clock, huge.allow).drain()
        (delivery,) = store.notifications(batch_id=batch_id)
        for _ in range(100):  # the receiver's write fails soon after the sender hung up
            if huge.cut_off:
                break
            threading.Event().wait(0.05)
    finally:
        store.close()
        huge.close()
    assert delivery.state is NotifyState.DELIVERED
    assert huge.cut_off == 1  # the sender hung up long before 50 MB
