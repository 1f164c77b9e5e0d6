"""Schema 3 adds the dashboard's sessions; a schema-2 store (schedules kept) is upgraded."""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import inspect, select, update

from progress import open_store
from progress import schema as t
from progress.schedule_model import NewSchedule
from sheetbatch.config import load_settings
from sheetbatch.worker import freeze_settings, thaw_settings


def test_a_schema_2_store_gains_the_sessions_table_and_keeps_its_schedules(db_url: str) -> None:
    store = open_store(db_url)
    schedule = store.create_schedule(
        NewSchedule(
            name="nightly",
            sheet="sheet.csv",
            pipeline="company",
            trigger={"kind": "interval", "seconds": 3600},
        )
    )
    with store.engine.begin() as conn:
        t.sessions.drop(conn)
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="2"))
    store.close()
    upgraded = open_store(db_url)
    try:
        with upgraded.engine.connect() as conn:
            assert "sb_sessions" in inspect(conn).get_table_names()
            version = conn.execute(
                select(t.meta.c.value).where(t.meta.c.key == "schema_version")
            ).scalar_one()
        assert int(version) == t.SCHEMA_VERSION >= 3
        assert upgraded.schedule(schedule.schedule_id).name == "nightly"
    finally:
        upgraded.close()


def test_settings_reach_a_worker_unchanged_but_without_the_token() -> None:
    settings = load_settings(
        config_files=[],
        environ={},
        overrides={
            "api_token": "Zq3-vN8_xT1pLw7Rk2sY",
            "allow_hosts": ("127.0.0.1:8080", "10.0.0.0/8"),
            "sheet_dirs": ("/srv/sheets",),
            "output_columns": (("Name", "Found name"), ("Status", "Our status")),
            "overwrite": ("Score",),
            "concurrency": 3,
            "flush_interval": 0.5,
        },
    )
    frozen = freeze_settings(settings)
    assert "api_token" not in frozen
    thawed = thaw_settings(json.loads(json.dumps(frozen)))
    assert thawed == replace(settings, api_token="")
    assert thawed.allow_hosts == ("127.0.0.1:8080", "10.0.0.0/8")
    assert thawed.output_columns == (("Name", "Found name"), ("Status", "Our status"))
