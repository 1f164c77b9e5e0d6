"""Real `sheetbatch scheduler` processes on one store: one leads, kill -9 moves the lead,
no tick runs twice, a tick orphaned between claim and launch gets exactly one batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gsheets_standin import StandIn
from gsheets_standin._auth import ServiceAccountKey
from progress import Store, open_store
from progress.schedule_model import TickState, tick_batch_id
from sheetbatch.scheduler import LEADER_LEASE
from sheetbatch.schedules import ScheduleInput, add_schedule
from tests.support.cli import cli_env
from tests.support.google import *  # noqa: F403  (the stand-in's pytest fixtures)
from tests.support.schedules import QUICK, CsvTestSheet, GoogleTestSheet, quick_settings

pytestmark = pytest.mark.slow

TTL = 1.0


class Schedulers:
    """`sheetbatch scheduler` processes started by a test, killed at its end."""

    def __init__(self, workdir: Path, db: str, **env: str) -> None:
        self.workdir, self.db, self.env = workdir, db, env
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        env = cli_env(SHEETBATCH_PIPELINE=QUICK, SHEETBATCH_FLUSH_INTERVAL="0.1", **self.env)
        argv = [sys.executable, "-m", "sheetbatch", "scheduler", "--db", self.db]
        with (self.workdir / f"scheduler-{len(self.procs)}.log").open("w") as log:
            proc = subprocess.Popen(
                [*argv, "--lease-seconds", str(TTL), *args],
                cwd=self.workdir,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.workdir.glob("scheduler-*.log")))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def schedulers(tmp_path: Path, db_url: str) -> Iterator[Schedulers]:
    group = Schedulers(tmp_path, db_url)
    try:
        yield group
    finally:
        group.stop_all()


def wait_for(what: Callable[[], Any], timeout: float = 30.0, why: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {why or what}")
        time.sleep(0.05)


def leader(store: Store) -> tuple[str, int] | None:
    lease = store.lease(LEADER_LEASE)
    if lease is None or not lease.held(store.clock()):
        return None
    assert lease.owner is not None
    return lease.owner, lease.epoch


def pid_of(owner: str) -> int:
    return int(owner.rsplit(":", 2)[1])


def test_two_schedulers_one_leads_kill_9_moves_the_lead_and_no_tick_runs_twice(
    tmp_path: Path, db_url: str, schedulers: Schedulers
) -> None:
    store = open_store(db_url)
    try:
        sheet = CsvTestSheet(tmp_path / "leads.csv", ["Acme", "Beta"])
        settings = quick_settings(db_url)
        sid = add_schedule(store, settings, ScheduleInput(sheet=sheet.spec, every="1s")).schedule_id
        schedulers.start()
        first = wait_for(lambda: leader(store), why="a leader")
        schedulers.start()
        wait_for(lambda: len(store.leases_like("scheduler.member:")) == 2, why="two members")
        wait_for(lambda: sheet.statuses() == {"Acme": "completed", "Beta": "completed"})
        sheet.append("Gamma")
        wait_for(lambda: sheet.statuses().get("Gamma") == "completed", why="Gamma")
        assert leader(store) == first  # the standby never took over while the leader lived
        before = store.lease(LEADER_LEASE)
        assert before is not None
        os.kill(pid_of(first[0]), signal.SIGKILL)
        killed_at = store.clock()
        second = wait_for(
            lambda: (lambda now: now if now and now[0] != first[0] else None)(leader(store)),
            timeout=10 * TTL + 10,
            why="the standby to lead",
        )
        lease = store.lease(LEADER_LEASE)
        assert lease is not None and second[1] == first[1] + 1
        took_over = lease.acquired - killed_at
        sheet.append("Delta")
        wait_for(lambda: sheet.statuses().get("Delta") == "completed", why="Delta")
        ticks = store.ticks(sid, limit=100_000)
        due = [t.scheduled_for for t in ticks]
        assert len(due) == len(set(due))  # one tick per due time
        launched = [t for t in ticks if t.batch_id]
        batches = store.batches(limit=1000)
        assert sorted(b["batch_id"] for b in batches) == sorted(t.batch_id for t in launched)
        jobs = [j for b in batches for j in store.jobs(batch_id=b["batch_id"])]
        assert sorted(j["label"] for j in jobs) == ["Acme", "Beta", "Delta", "Gamma"]
        assert {j["status"] for j in jobs} == {"succeeded"}
        assert {t.scheduler for t in ticks} >= {first[0], second[0]}
        wait_for(
            lambda: not [t for t in store.ticks(sid, limit=20) if not t.state.terminal],
            why="no tick left running",
        )
        print(f"takeover {took_over:.2f} s after kill -9 (TTL {TTL} s)")
        # Never two leaders: the standby took the lease only once the dead one's expired.
        assert lease.acquired >= before.expires
    finally:
        store.close()


def test_kill_9_between_claim_and_launch_gives_the_tick_exactly_one_batch(
    tmp_path: Path,
    standin: StandIn,
    service_account_key: ServiceAccountKey,
    key_file: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'progress.db'}"
    group = Schedulers(
        tmp_path,
        db_url,
        SHEETBATCH_SHEETS_API_URL=standin.url,
        GOOGLE_APPLICATION_CREDENTIALS=str(key_file),
    )
    store = open_store(db_url)
    try:
        sheet = GoogleTestSheet(standin, service_account_key.email, ["Acme"])
        settings = quick_settings(db_url, credentials=str(key_file), sheets_api_url=standin.url)
        sid = add_schedule(
            store, settings, ScheduleInput(sheet=sheet.spec, every="1d", pipeline=QUICK)
        ).schedule_id
        standin.latency = 30.0  # every read hangs: the tick is claimed, its read never ends
        a = group.start()
        wait_for(lambda: leader(store), why="a leader")
        tick = store.request_run(sid, requested_by="test")
        wait_for(lambda: store.tick(tick.tick_id).state is TickState.RUNNING, why="the claim")
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        assert store.tick(tick.tick_id).batch_id is None
        standin.latency = 0.0
        group.start()
        done = wait_for(
            lambda: (lambda t: t if t.state.terminal else None)(store.tick(tick.tick_id)),
            timeout=60,
            why="the orphaned tick to finish",
        )
        assert done.state is TickState.SUCCEEDED, (done, group.logs())
        assert [b["batch_id"] for b in store.batches()] == [tick_batch_id(tick.tick_id)]
        wait_for(lambda: sheet.statuses() == {"Acme": "completed"}, why="the final flush")
    finally:
        group.stop_all()
        store.close()
