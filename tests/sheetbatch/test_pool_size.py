"""`[store] pool_size` as a user meets it (issue 13): validated with its name, and a PostgreSQL
out of connection slots told by the real CLI in one line naming the setting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from progress import open_store
from sheetbatch.config import ConfigError, load_settings
from tests.support.cli import sheetbatch, write_csv
from tests.support.databases import postgres_role_url


@pytest.mark.parametrize("value", ["0", "x", "-2", "2.5"])
def test_a_pool_size_that_is_not_a_positive_whole_number_is_refused_by_name(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ConfigError) as from_env:
        load_settings(config_files=[], environ={"SHEETBATCH_STORE_POOL_SIZE": value})
    assert str(from_env.value).startswith("environment SHEETBATCH_STORE_POOL_SIZE: ")
    assert "[store] pool_size must be" in str(from_env.value)
    assert repr(value) in str(from_env.value)

    config = tmp_path / "pool.toml"
    toml_value = '"x"' if value == "x" else value
    config.write_text(f"[store]\npool_size = {toml_value}\n")
    with pytest.raises(ConfigError) as from_file:
        load_settings(config_files=[config], environ={})
    assert str(from_file.value).startswith(f"{config}: store.pool_size: [store] pool_size must")


def test_the_pool_size_comes_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "pool.toml"
    config.write_text("[store]\npool_size = 3\n")
    assert load_settings(config_files=[config], environ={}).pool_size == 3
    environ = {"SHEETBATCH_STORE_POOL_SIZE": "1"}
    assert load_settings(config_files=[config], environ=environ).pool_size == 1


def test_a_bad_pool_size_stops_the_cli_with_exit_2(tmp_path: Path) -> None:
    done = sheetbatch(["status"], cwd=tmp_path, SHEETBATCH_STORE_POOL_SIZE="0")
    assert done.returncode == 2, done.stderr
    assert "[store] pool_size must be greater than 0, not '0'" in done.stderr


@pytest.fixture
def limited_role() -> Iterator[tuple[str, str]]:
    """A role allowed 2 sessions, on a schema of its own."""
    yield from postgres_role_url(2)


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["status", "run"])
def test_a_postgresql_out_of_slots_is_one_line_naming_pool_size_and_max_connections(
    limited_role: tuple[str, str], tmp_path: Path, command: str
) -> None:
    url, role = limited_role
    open_store(url, pool_size=1).close()  # a store exists there (status reads, never creates)
    sheet = write_csv(tmp_path / "leads.csv", ["Company", "Website"], [["Acme", "acme.test"]])
    held: list[psycopg.Connection[Any]] = []
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        while True:  # every slot the role has, taken by someone else
            try:
                held.append(psycopg.connect(dsn, autocommit=True))
            except psycopg.OperationalError:
                break
        assert len(held) == 2
        args = ["status"] if command == "status" else ["run", str(sheet)]
        done = sheetbatch(
            [*args, "--db", url], cwd=tmp_path, SHEETBATCH_STORE_POOL_SIZE="4", timeout=60
        )
    finally:
        for conn in held:
            conn.close()
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: PostgreSQL has no connection slot left"), lines[0]
    assert f'too many connections for role "{role}"' in lines[0]
    assert "lower [store] pool_size (now 4) in each process" in lines[0]
    assert "max_connections" in lines[0]
    assert "Traceback" not in done.stderr
    # Nothing was written: the sheet is as it was.
    assert sheet.read_text(encoding="utf-8").splitlines() == ["Company,Website", "Acme,acme.test"]
