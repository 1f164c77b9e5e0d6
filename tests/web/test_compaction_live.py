"""The automatic compaction policy in a real `sheetbatch serve`, on SQLite and PostgreSQL:
a finished batch is compacted once `[store] compact_after` passed, and a stream resumed from
a cursor before the compaction gets a fresh snapshot."""

from __future__ import annotations

from pathlib import Path

from progress import open_store
from progress.compaction import PROGRESS_EVENTS
from tests.web.support import (
    companies,
    server_env,
    start_batch,
    start_server,
    wait_for,
    write_sheet,
)


def test_serve_compacts_a_finished_batch_and_old_cursors_get_a_snapshot(
    db_url: str, tmp_path: Path
) -> None:
    server = start_server(
        tmp_path,
        db_url,
        env=server_env(SHEETBATCH_STORE_COMPACT_AFTER="1", SHEETBATCH_TEST_PHASE_SECONDS="0.01"),
    )
    store = open_store(db_url)
    try:
        with server.client() as client:
            sheet = write_sheet(server.sheets / "c.csv", companies(6))
            batch_id = start_batch(client, sheet)
            wait_for(lambda: store.batch(batch_id)["status"] == "completed", timeout=60)

            def compacted() -> bool:
                kinds = {e["type"] for e in store.events_after(0, batch_id=batch_id)}
                return not kinds & set(PROGRESS_EVENTS)

            wait_for(compacted, timeout=30, interval=0.2)
            kinds = [e["type"] for e in store.events_after(0, batch_id=batch_id)]
            assert kinds.count("job_succeeded") == 6 and kinds.count("job_started") == 6
            first_event = store.events_after(0, batch_id=batch_id)[0]["id"]
            with client.stream(
                "GET", f"/events/batches/{batch_id}", headers={"Last-Event-ID": str(first_event)}
            ) as answer:
                assert answer.status_code == 200
                lines = []
                for line in answer.iter_lines():
                    lines.append(line)
                    if line.startswith("event: ") and line != "event: ping":
                        break
            assert lines[-1] == "event: snapshot", lines
    finally:
        store.close()
        assert server.stop() == 0, server.output()
