"""The project's layout promises: our packages shadow the unrelated PyPI ones."""

from __future__ import annotations

from pathlib import Path

import pipeline
import progress
import sheetbatch
import sheets_integration

ROOT = Path(__file__).resolve().parents[1]


def test_progress_and_pipeline_are_this_projects_packages() -> None:
    for module in (progress, pipeline, sheets_integration, sheetbatch):
        assert Path(module.__file__ or "").resolve().is_relative_to(ROOT / "src"), module


def test_every_tests_folder_is_a_package() -> None:
    missing = [
        str(d.relative_to(ROOT))
        for d in [ROOT / "tests", *(ROOT / "tests").rglob("*")]
        if d.is_dir()
        and d.name != "__pycache__"
        and any(d.glob("*.py"))
        and not (d / "__init__.py").exists()
    ]
    assert missing == []


def test_default_config_file_matches_the_built_in_defaults() -> None:
    from sheetbatch.config import Settings, load_settings

    loaded = load_settings(config_files=[ROOT / "config" / "default.toml"], environ={})
    assert loaded == Settings()
