"""A worker cut off from PostgreSQL (a blackholing TCP proxy) for longer than its lease."""

from __future__ import annotations

import json
from pathlib import Path

from progress import Store
from tests.cluster.conftest import CLUSTER_ENV, Spawn
from tests.cluster.support import (
    assert_one_terminal_state_each,
    assert_sheet_matches_store,
    make_sheet,
)
from tests.cluster.test_celery_runs import _finish, _run_args
from tests.support.cli import start_sheetbatch
from tests.support.cluster import start_worker, stop, wait_for, wait_registered
from tests.support.tcp_proxy import proxied_postgres


def test_a_partitioned_worker_is_taken_over_and_refused_when_the_link_heals(
    tmp_path: Path, cluster_db: str, broker: str, cluster_store: Store, workers: Spawn
) -> None:
    with proxied_postgres(cluster_db) as (cut_db, proxy):
        cut = start_worker(
            cut_db,
            broker,
            name="cut",
            cwd=tmp_path,
            concurrency=1,
            **{**CLUSTER_ENV, "SHEETBATCH_TEST_PHASE_SECONDS": "0.4"},
        )
        try:
            wait_registered(cluster_store, "cut")
            sheet = make_sheet(tmp_path, 4)
            run = start_sheetbatch(
                _run_args(sheet, cluster_db, broker), cwd=tmp_path, **CLUSTER_ENV
            )

            def cut_runs_a_row() -> bool:
                batches = cluster_store.batches()
                leases = cluster_store.leases(batches[0]["batch_id"]) if batches else []
                return any(owner.endswith(":cut") for owner, _ in leases)

            wait_for(cut_runs_a_row, 30, "the soon cut-off worker to run a row")
            proxy.blackhole()  # no error, no answer: longer than its lease, until the run ends
            # Its own lease is long: on a loaded machine a heartbeat late by 2 s would requeue
            # the taker's rows too, and this test is about the cut worker's row alone.
            workers("other", SHEETBATCH_RUN_LEASE_SECONDS="30")
            out, err = _finish(run)
            assert run.returncode == 0, err
            final = json.loads(out)
            assert final["counts"]["succeeded"] == 4
            head = cluster_store.last_event_id()
            proxy.heal()
            log = tmp_path / "cut.log"
            wait_for(lambda: "lease lost" in log.read_text(), 60, "the healed worker to try on")
        finally:
            stop(cut)
    assert cluster_store.last_event_id() == head  # none of its writes landed
    events = assert_one_terminal_state_each(cluster_store, final["batch_id"])
    taken = [j for j, evs in events.items() if any(e["type"] == "job_requeued" for e in evs)]
    assert len(taken) == 1
    starts = [e["data"]["worker"] for e in events[taken[0]] if e["type"] == "job_started"]
    assert starts[0].endswith(":cut") and starts[-1].endswith(":other")
    assert_sheet_matches_store(cluster_store, sheet)
