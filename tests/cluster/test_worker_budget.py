"""A `sheetbatch worker` whose `--concurrency` is four times its `[store] pool_size` (issue 13):
it runs every row, its threads queued behind its few connections, and never holds more."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

from progress import Store
from tests.cluster.conftest import CLUSTER_ENV
from tests.cluster.support import (
    PIPELINE,
    assert_one_terminal_state_each,
    assert_sheet_matches_store,
    make_sheet,
)
from tests.support.cli import start_sheetbatch
from tests.support.cluster import start_worker, stop, wait_registered
from tests.support.databases import admin_connection


def test_a_worker_with_more_threads_than_connections_runs_every_row_within_its_budget(
    tmp_path: Path, pg_db: str, cluster_db: str, broker: str, cluster_store: Store
) -> None:
    name = "sb_narrow_" + secrets.token_hex(4)
    worker = start_worker(
        f"{pg_db}&application_name={name}",
        broker,
        name="narrow",
        cwd=tmp_path,
        concurrency=8,
        SHEETBATCH_STORE_POOL_SIZE="2",
        **CLUSTER_ENV,
    )
    admin = admin_connection()
    try:
        wait_registered(cluster_store, "narrow")
        sheet = make_sheet(tmp_path, 24)
        args = ["run", str(sheet), "--db", cluster_db, "--executor", "celery"]
        args += ["--broker", broker, "--pipeline", PIPELINE, "--json"]
        run = start_sheetbatch(args, cwd=tmp_path, **CLUSTER_ENV)
        most = 0
        while run.poll() is None:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchone()
            assert row is not None
            most = max(most, int(row[0]))
            time.sleep(0.005)
        try:
            out, err = run.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            run.kill()
            raise
    finally:
        admin.close()
        stop(worker)
    assert run.returncode == 0, err
    final = json.loads(out)
    assert final["counts"]["succeeded"] == 24
    assert_one_terminal_state_each(cluster_store, final["batch_id"])
    assert_sheet_matches_store(cluster_store, sheet)
    log = (tmp_path / "narrow.log").read_text()
    assert "StoreBusy" not in log and "no connection slot" not in log
    assert 1 <= most <= 2
