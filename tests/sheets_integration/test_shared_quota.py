"""One credential's Google quota shared by every process of one PostgreSQL store."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from progress import open_store
from tests.support.cli import cli_env

pytestmark = pytest.mark.postgres

# A process of the cluster: at a frozen store clock, take write tokens of one credential
# until the bucket asks it to wait (its injected sleep stops it there), and say how many
# it was granted and how long it was told to wait. With "429" it first meets a 429.
_PROCESS = """
import json, sys
from progress import open_store
from sheets_integration.quota import QuotaRegistry, QuotaSettings

url, now, first = sys.argv[1], float(sys.argv[2]), sys.argv[3]
waits = []

class Told(Exception):
    pass

def sleep(seconds):
    waits.append(seconds)
    raise Told

store = open_store(url, clock=lambda: now)
registry = QuotaRegistry(shared=store.quota_state(), sleep=sleep)
settings = QuotaSettings(writes_per_minute=60, burst=5)
quota = registry.for_account("rows@p.iam.gserviceaccount.com", settings)
if first == "429":
    quota.rate_limited("write")
granted = 0
try:
    while granted < 50:
        quota.bucket("write").acquire()
        granted += 1
except Told:
    pass
store.close()
print(json.dumps({"granted": granted, "wait": waits[0] if waits else None}))
"""


def _start(url: str, now: float, first: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _PROCESS, url, str(now), first],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    return dict(json.loads(out))


@pytest.fixture
def store_url(pg_db: str) -> str:
    open_store(pg_db).close()  # the schema exists before the processes race for buckets
    return pg_db


def test_two_processes_on_one_credential_share_one_burst_and_refill(store_url: str) -> None:
    t0 = 1_000_000.0
    both = [_start(store_url, t0), _start(store_url, t0)]
    results = [_result(p) for p in both]
    # One budget: together they got the burst once (each process alone would get it whole).
    assert sum(r["granted"] for r in results) == 5
    assert all(r["wait"] == pytest.approx(1.0) for r in results)  # 60/min: one token a second
    later = _result(_start(store_url, t0 + 3.0))
    assert later["granted"] == 3  # what three seconds refilled, whoever spent the burst


def test_a_429_in_one_process_pauses_the_credential_in_every_process(store_url: str) -> None:
    t0 = 2_000_000.0
    hit = _result(_start(store_url, t0, "429"))
    assert hit["granted"] == 0 and hit["wait"] == pytest.approx(60.0)
    other = _result(_start(store_url, t0 + 10.0))
    assert other["granted"] == 0 and other["wait"] == pytest.approx(50.0)
    after = _result(_start(store_url, t0 + 61.0))
    assert after["granted"] == 1  # the minute refilled; the pause left no burst behind
