"""`[executor]`: a misspelt kind names its key; celery with a SQLite store is refused at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sheetbatch.config import ConfigError, load_settings
from tests.support.cli import sheetbatch


def test_an_unknown_executor_kind_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(config_files=[], environ={"SHEETBATCH_EXECUTOR_KIND": "kubernetes"})
    message = str(raised.value)
    assert "SHEETBATCH_EXECUTOR_KIND" in message and "local, celery" in message
    settings = load_settings(config_files=[], environ={"SHEETBATCH_EXECUTOR_KIND": "celery"})
    assert settings.executor == "celery"
    assert settings.broker_url == "amqp://guest:guest@127.0.0.1:5672//"


def test_serve_with_celery_on_a_sqlite_store_exits_2_with_one_line(tmp_path: Path) -> None:
    done = sheetbatch(
        ["serve", "--executor", "celery", "--db", f"sqlite:///{tmp_path / 'p.db'}", "--port", "0"],
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "PostgreSQL" in lines[0]
    assert not (tmp_path / "p.db").exists()
