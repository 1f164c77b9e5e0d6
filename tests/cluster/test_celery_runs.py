"""`run --executor celery` with real worker processes on RabbitMQ and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from progress import Store
from tests.cluster.conftest import CLUSTER_ENV, Spawn
from tests.cluster.support import (
    PIPELINE,
    assert_one_terminal_state_each,
    assert_sheet_matches_store,
    make_sheet,
)
from tests.support.cli import read_csv, sheetbatch, start_sheetbatch
from tests.support.cluster import close_broker_connections, terminate_backends, wait_for


def _finish(run: subprocess.Popen[str], timeout: float = 180.0) -> tuple[str, str]:
    """The run's output once it exits; killed (not leaked) when it does not in `timeout`."""
    try:
        return run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        _out, err = run.communicate()
        tail = "\n".join(err.splitlines()[-60:])
        raise AssertionError(
            f"the run did not exit in {timeout:.0f} s; its stderr:\n{tail}"
        ) from None


def _run_args(sheet: Path, db: str, broker: str) -> list[str]:
    return [
        "run", str(sheet), "--db", db, "--executor", "celery", "--broker", broker,
        "--pipeline", PIPELINE, "--json",
    ]  # fmt: skip


def test_sqlite_or_an_unreachable_broker_is_refused_and_nothing_is_written(
    tmp_path: Path, cluster_db: str, cluster_store: Store
) -> None:
    sheet = make_sheet(tmp_path, 2)
    before = sheet.read_text()
    sqlite = f"sqlite:///{tmp_path / 'p.db'}"
    done = sheetbatch(_run_args(sheet, sqlite, "amqp://guest:guest@127.0.0.1:5672//"), cwd=tmp_path)
    assert done.returncode == 2
    assert "needs a PostgreSQL store" in done.stderr and len(done.stderr.splitlines()) == 1
    dead = "amqp://guest:secret@127.0.0.1:1//"
    done = sheetbatch(_run_args(sheet, cluster_db, dead), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "127.0.0.1:1" in done.stderr and "secret" not in done.stderr
    assert sheet.read_text() == before
    assert cluster_store.batches() == []


def test_two_workers_run_a_batch_and_one_killed_mid_row_loses_nothing(
    tmp_path: Path, cluster_db: str, broker: str, cluster_store: Store, workers: Spawn
) -> None:
    victim, _survivor = workers("victim", "survivor")
    sheet = make_sheet(tmp_path, 12)
    run = start_sheetbatch(_run_args(sheet, cluster_db, broker), cwd=tmp_path, **CLUSTER_ENV)

    def victim_mid_row() -> bool:
        batches = cluster_store.batches()
        return bool(batches) and any(
            owner.endswith(":victim") for owner, _ in cluster_store.leases(batches[0]["batch_id"])
        )

    wait_for(victim_mid_row, 30, "the victim to run a row")
    os.killpg(victim.pid, signal.SIGKILL)
    out, err = _finish(run)
    assert run.returncode == 0, err
    final = json.loads(out)
    assert final["counts"]["succeeded"] == 12
    batch_id = final["batch_id"]
    events = assert_one_terminal_state_each(cluster_store, batch_id)
    taken_over = [
        job_id for job_id, evs in events.items() if any(e["type"] == "job_requeued" for e in evs)
    ]
    assert taken_over, "the victim's row was taken over"
    for job_id in taken_over:
        starts = [e["data"]["worker"] for e in events[job_id] if e["type"] == "job_started"]
        assert starts[0].endswith(":victim") and starts[-1].endswith(":survivor")
    assert_sheet_matches_store(cluster_store, sheet)
    listed = sheetbatch(["status", "--workers", "--db", cluster_db, "--json"], cwd=tmp_path)
    alive = {w["owner"].rsplit(":", 1)[-1]: w["alive"] for w in json.loads(listed.stdout)}
    assert alive == {"victim": False, "survivor": True}


def test_a_paused_worker_whose_row_was_taken_over_cannot_write_when_it_wakes(
    tmp_path: Path, cluster_db: str, broker: str, cluster_store: Store, workers: Spawn
) -> None:
    (sleeper,) = workers("sleeper", concurrency=1, SHEETBATCH_TEST_PHASE_SECONDS="0.4")
    sheet = make_sheet(tmp_path, 1)
    run = start_sheetbatch(_run_args(sheet, cluster_db, broker), cwd=tmp_path, **CLUSTER_ENV)
    wait_for(
        lambda: (
            cluster_store.batches() and cluster_store.leases(cluster_store.batches()[0]["batch_id"])
        ),
        30,
        "the row to start",
    )
    os.killpg(sleeper.pid, signal.SIGSTOP)  # paused: alive, but silent past its lease
    try:
        workers("awake")
        out, err = _finish(run)
        assert run.returncode == 0, err
    finally:
        os.killpg(sleeper.pid, signal.SIGCONT)
    batch_id = json.loads(out)["batch_id"]
    head = cluster_store.last_event_id()
    time.sleep(2.0)  # the sleeper wakes and tries to go on with its phase
    assert cluster_store.last_event_id() == head
    assert_one_terminal_state_each(cluster_store, batch_id)
    log = (tmp_path / "sleeper.log").read_text()
    assert "lease lost" in log
    assert_sheet_matches_store(cluster_store, sheet)


def test_broker_connections_closed_mid_run_lose_no_row(
    tmp_path: Path, cluster_db: str, broker: str, cluster_store: Store, workers: Spawn
) -> None:
    workers("a", "b")
    sheet = make_sheet(tmp_path, 10)
    run = start_sheetbatch(_run_args(sheet, cluster_db, broker), cwd=tmp_path, **CLUSTER_ENV)
    wait_for(
        lambda: cluster_store.batches() and cluster_store.batches()[0]["counts"]["succeeded"] >= 2,
        30,
        "rows to finish",
    )
    close_broker_connections()
    out, err = _finish(run)
    assert run.returncode == 0, err
    final = json.loads(out)
    assert final["counts"]["succeeded"] == 10
    assert_one_terminal_state_each(cluster_store, final["batch_id"])
    assert_sheet_matches_store(cluster_store, sheet)


def test_cancel_mid_batch_stops_rows_with_no_phase_event_after_cancelled(
    tmp_path: Path, cluster_db: str, broker: str, cluster_store: Store, workers: Spawn
) -> None:
    workers("a")
    sheet = make_sheet(tmp_path, 12)
    run = start_sheetbatch(_run_args(sheet, cluster_db, broker), cwd=tmp_path, **CLUSTER_ENV)
    wait_for(
        lambda: cluster_store.batches() and cluster_store.batches()[0]["counts"]["running"] > 0,
        30,
        "rows to run",
    )
    batch_id = cluster_store.batches()[0]["batch_id"]
    cluster_store.cancel_batch(batch_id)  # as `sheetbatch cancel` does, from another process
    out, _err = _finish(run)
    final = json.loads(out)
    assert final["status"] == "cancelled" and final["counts"]["cancelled"] > 0
    events = assert_one_terminal_state_each(cluster_store, batch_id)
    for evs in events.values():
        types = [e["type"] for e in evs]
        if "job_cancelled" in types:
            after = types[types.index("job_cancelled") + 1 :]
            assert not any(t.startswith("phase_") for t in after), types
    rows = read_csv(sheet)
    assert {r["Status"] for r in rows} <= {"completed", "cancelled"}
    assert_sheet_matches_store(cluster_store, sheet)


def test_postgresql_backends_killed_mid_run_lose_no_event(
    tmp_path: Path,
    cluster_db: str,
    app_name: str,
    broker: str,
    cluster_store: Store,
    workers: Spawn,
) -> None:
    # No worker dies here: long leases, so a loaded machine's late heartbeat cannot requeue
    # (and after three attempts abandon) a row while everyone reconnects.
    long_lease = {**CLUSTER_ENV, "SHEETBATCH_RUN_LEASE_SECONDS": "30"}
    workers("a", "b", SHEETBATCH_RUN_LEASE_SECONDS="30")
    sheet = make_sheet(tmp_path, 16)
    run = start_sheetbatch(_run_args(sheet, cluster_db, broker), cwd=tmp_path, **long_lease)
    wait_for(
        lambda: cluster_store.batches() and cluster_store.batches()[0]["counts"]["succeeded"] >= 2,
        30,
        "rows to finish",
    )
    assert terminate_backends(app_name) > 0  # the workers', the run's, the sheet writer's
    out, err = _finish(run)
    assert run.returncode == 0, out + err
    final = json.loads(out)
    assert final["counts"]["succeeded"] == 16
    ids = [e["id"] for e in cluster_store.events_after(0, limit=100_000)]
    assert ids == list(range(1, len(ids) + 1))
    assert_one_terminal_state_each(cluster_store, final["batch_id"])
    assert_sheet_matches_store(cluster_store, sheet)
