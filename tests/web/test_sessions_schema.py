"""Schema 2 adds the dashboard's sessions; a schema-1 store is upgraded in place."""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import inspect, select, update

from progress import open_store
from progress import schema as t
from sheetbatch.config import load_settings
from sheetbatch.worker import freeze_settings, thaw_settings


def test_a_schema_1_store_gains_the_sessions_table(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.begin() as conn:
        t.sessions.drop(conn)
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="1"))
    store.close()
    upgraded = open_store(db_url)
    try:
        with upgraded.engine.connect() as conn:
            assert "sb_sessions" in inspect(conn).get_table_names()
            version = conn.execute(
                select(t.meta.c.value).where(t.meta.c.key == "schema_version")
            ).scalar_one()
        assert int(version) == t.SCHEMA_VERSION == 2
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
            "concurrency": 3,
            "flush_interval": 0.5,
        },
    )
    frozen = freeze_settings(settings)
    assert "api_token" not in frozen
    thawed = thaw_settings(json.loads(json.dumps(frozen)))
    assert thawed == replace(settings, api_token="")
    assert thawed.allow_hosts == ("127.0.0.1:8080", "10.0.0.0/8")
