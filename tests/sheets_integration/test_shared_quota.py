"""One credential's Google quota shared by every process of one PostgreSQL store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gsheets_standin import QuotaLimits, ServiceAccountKey, StandIn
from progress import open_store
from tests.support.cli import cli_env
from tests.support.google import *  # noqa: F403

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
    return _spawn(_PROCESS, url, str(now), first)


def _spawn(script: str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=cli_env(**env)
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


# A process of the cluster as `sheetbatch` makes one: settings from the environment, the
# sheet opened by `service.open_sheet` with the PostgreSQL store; it reads the sheet as
# fast as its quota lets it for `seconds`, then says how many requests it made.
_READER = """
import json, os, sys, threading, time
from progress import open_store
from sheetbatch.config import load_settings
from sheetbatch.service import open_sheet

url, spec, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = open_store(url)
made = []

def read_on():
    sheet = open_sheet(spec, load_settings(config_files=[]), store=store)
    made.append("open")
    while True:
        sheet.read_values()
        made.append("read")

threading.Thread(target=read_on, daemon=True).start()
time.sleep(seconds)
print(json.dumps({"requests": len(made)}), flush=True)
os._exit(0)  # the reader is still waiting for a token
"""

LIMIT = 8  # the stand-in's reads per minute per user; its clock stands still in this test
BURST, PER_MINUTE = 5, 3  # the client's: BURST + PER_MINUTE <= LIMIT, as 5 + 50 <= 60


def test_two_processes_opening_one_credentials_sheet_stay_within_its_limit_together(
    store_url: str, standin: StandIn, key_file: Path, service_account_key: ServiceAccountKey
) -> None:
    standin.set_quota(QuotaLimits(read_per_user=LIMIT, write_per_user=LIMIT))
    key = standin.create_spreadsheet(
        {"Leads": [["Company"], ["Acme"]]}, shared_with=[service_account_key.email]
    )
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "SHEETBATCH_SHEETS_API_URL": standin.url,
        "SHEETBATCH_GOOGLE_READ_PER_MINUTE": str(PER_MINUTE),
        "SHEETBATCH_GOOGLE_BURST": str(BURST),
    }
    started = time.monotonic()
    both = [_spawn(_READER, store_url, f"{key}/Leads", "6", **env) for _ in range(2)]
    made = [_result(p)["requests"] for p in both]
    elapsed = time.monotonic() - started
    # Each alone would spend its own burst (10 requests, over the limit of 8: 429s); one
    # budget for the credential grants the burst once, then 3 a minute, to both together.
    granted = standin.count(user=service_account_key.email, status=200)
    assert sum(made) <= granted <= sum(made) + 2  # one request each may have been in flight
    assert BURST <= granted <= BURST + PER_MINUTE * elapsed / 60 + 1
    assert standin.count(status=429) == 0
