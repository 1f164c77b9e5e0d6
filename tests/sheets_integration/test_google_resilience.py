"""GoogleSheet under quota pressure and failures: 429 storms, 5xx, timeouts, resets, 401s.

The stand-in and the client share a manual clock, so a minute of quota refill or backoff
takes no real time.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gsheets_standin import Fault, ManualClock, QuotaLimits, StandIn
from sheets_integration.google_errors import QuotaExhausted, SheetUnavailable
from sheets_integration.google_sheet import GoogleSheet
from sheets_integration.quota import QuotaRegistry, QuotaSettings, RetryPolicy
from tests.support.google import *  # noqa: F403

MakeSheet = Callable[..., GoogleSheet]
HEADER = ["Company", "Status", "Job ID", "Updated", "Error"]
ROWS = [HEADER, *([f"c{i}", "", f"j{i}"] for i in range(20))]


def _statuses(standin: StandIn, sheet: GoogleSheet) -> dict[str, str]:
    return {row[2]: row[1] for row in standin.values(sheet.key)[1:]}


def _ready(sheet: GoogleSheet, clock: ManualClock) -> GoogleSheet:
    """The sheet with its columns tagged (as a batch's prepare leaves it), buckets refilled."""
    sheet.ensure_columns(HEADER)
    clock.advance(60)
    return sheet


def test_a_429_storm_is_survived_and_every_write_lands(
    google_sheet: MakeSheet, standin: StandIn, standin_clock: ManualClock
) -> None:
    # The client believes it may write 1000/min; Google allows 5.
    standin.set_quota(QuotaLimits(write_per_user=5, read_per_user=1000, read_per_project=1000))
    sheet = google_sheet(ROWS, quota=QuotaSettings(writes_per_minute=1000, burst=1000))
    _ready(sheet, standin_clock)
    started = standin_clock.now()
    for i in range(20):
        sheet.write_by_job_id({f"j{i}": {"Status": f"done {i}"}})
    assert _statuses(standin, sheet) == {f"j{i}": f"done {i}" for i in range(20)}
    refused = standin.count(route="values.batchUpdateByDataFilter", status=429)
    assert refused >= 3
    # Each 429 paused the shared write bucket until the minute refilled.
    assert standin_clock.now() - started >= 3 * 60


def test_default_buckets_keep_under_googles_quota(
    google_sheet: MakeSheet, standin: StandIn, standin_clock: ManualClock
) -> None:
    sheet = _ready(google_sheet(ROWS), standin_clock)  # 50/min, burst 5, vs Google's 60/min
    standin.clear_log()
    started = standin_clock.now()
    for i in range(30):
        sheet.write_by_job_id({f"j{i % 20}": {"Status": f"w{i}"}})
    assert standin.count(status=429) == 0
    assert standin.count(route="values.batchUpdateByDataFilter") == 30
    # Each write is planned on one read; both buckets grant 5 at once, then one per 1.2 s.
    assert standin.count(kind="read") == 30
    assert standin_clock.now() - started == pytest.approx((30 - 5) * 1.2)
    for kind in ("read", "write"):
        times = [r.at for r in standin.log if r.kind == kind]
        assert all(sum(1 for t in times if s <= t < s + 60) <= 55 for s in times)


def test_buckets_are_shared_by_every_sheet_of_a_credential(
    standin: StandIn,
    google_sheet: MakeSheet,
    quota_registry: QuotaRegistry,
    standin_clock: ManualClock,
) -> None:
    settings = QuotaSettings(reads_per_minute=6000, writes_per_minute=6, burst=2)
    first, second = google_sheet(ROWS, quota=settings), google_sheet(ROWS, quota=settings)
    _ready(first, standin_clock), _ready(second, standin_clock)
    started = standin_clock.now()
    first.write_by_job_id({"j1": {"Status": "a"}})
    second.write_by_job_id({"j1": {"Status": "b"}})
    assert standin_clock.now() - started < 0.1  # the burst of 2 writes, shared
    first.write_by_job_id({"j2": {"Status": "c"}})
    assert standin_clock.now() - started == pytest.approx(10.0, abs=0.1)  # then 1 per 10 s
    assert quota_registry.for_account(first.account) is quota_registry.for_account(second.account)


def test_a_persistent_429_gives_up_and_nothing_is_lost(
    google_sheet: MakeSheet, standin: StandIn, standin_clock: ManualClock
) -> None:
    sheet = _ready(google_sheet(ROWS, retry=RetryPolicy(max_attempts=3)), standin_clock)
    standin.inject(Fault.RATE_LIMITED, times=3, kind="write")
    update = {"j3": {"Status": "completed"}}
    with pytest.raises(QuotaExhausted, match="quota still exhausted after 3 attempts") as caught:
        sheet.write_by_job_id(update)
    assert _statuses(standin, sheet)["j3"] == ""
    # Transient, and the message makes no promise of when: the caller decides.
    assert caught.value.retry_later and "retried later" not in str(caught.value)
    # The caller kept the update and flushes it later: it lands.
    assert sheet.write_by_job_id(update).cells == 1
    assert _statuses(standin, sheet)["j3"] == "completed"


@pytest.mark.parametrize("fault", [Fault.INTERNAL, Fault.UNAVAILABLE, Fault.RESET])
def test_server_errors_and_resets_are_retried(
    google_sheet: MakeSheet, standin: StandIn, standin_clock: ManualClock, fault: Fault
) -> None:
    sheet = _ready(google_sheet(ROWS), standin_clock)
    standin.inject(fault, times=2, kind="write")
    before = len(standin_clock.sleeps)
    assert sheet.write_by_job_id({"j4": {"Status": "ok"}}).cells == 1
    assert _statuses(standin, sheet)["j4"] == "ok"
    backoffs = standin_clock.sleeps[before:]
    assert len(backoffs) == 2 and 1 <= backoffs[0] <= 2 and 2 <= backoffs[1] <= 3


def test_reads_are_retried_too(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = google_sheet(ROWS)
    standin.inject(Fault.UNAVAILABLE, times=2, kind="read")
    assert sheet.read().header == HEADER


def test_timeouts_are_retried(
    google_sheet: MakeSheet, standin: StandIn, standin_clock: ManualClock
) -> None:
    sheet = _ready(google_sheet(ROWS, timeout=0.3), standin_clock)
    standin.inject(Fault.TIMEOUT, kind="write", delay=5)
    assert sheet.write_by_job_id({"j5": {"Status": "late"}}).cells == 1
    assert _statuses(standin, sheet)["j5"] == "late"
    assert [r.fault for r in standin.log if r.fault] == ["timeout"]


def test_unavailable_after_every_attempt(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = google_sheet(ROWS, retry=RetryPolicy(max_attempts=2))
    standin.inject(Fault.INTERNAL, times=2)
    with pytest.raises(SheetUnavailable, match=r"unavailable after 2 attempts .*500 INTERNAL"):
        sheet.read()


def test_token_refresh_on_401(
    google_sheet: MakeSheet, standin: StandIn, standin_clock: ManualClock
) -> None:
    sheet = _ready(google_sheet(ROWS), standin_clock)
    standin.clear_log()
    standin.fail_auth()
    assert sheet.write_by_job_id({"j6": {"Status": "ok"}}).cells == 1
    assert [(r.route, r.status) for r in standin.log] == [
        ("values.batchGetByDataFilter", 401),
        ("token", 200),
        ("values.batchGetByDataFilter", 200),
        ("values.batchUpdateByDataFilter", 200),
    ]


def test_a_renamed_worksheet_is_followed(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = google_sheet(ROWS, title="Leads")
    sheet.read()
    with standin.edit(sheet.key) as book:
        book.sheet("Leads").title = "Leads (old)"
    assert sheet.write_by_job_id({"j7": {"Status": "ok"}}).cells == 1
    assert sheet.name.endswith("/Leads (old)")
