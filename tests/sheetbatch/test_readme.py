"""The README's promises about columns stay true: every column each built-in pipeline writes
is listed, and its configuration example is one sheetbatch accepts."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.registry import BUILTINS
from sheetbatch.config import load_settings
from sheets_integration.sheet import BOOKKEEPING_COLUMNS

README = Path(__file__).resolve().parents[2] / "README.md"


def columns_table() -> dict[str, list[str]]:
    """The rows of the README's "columns a run writes" table: first cell -> its columns."""
    section = README.read_text(encoding="utf-8").split("### The columns a run writes", 1)[1]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[1].startswith("`"):
            rows[cells[0]] = re.findall(r"`([^`]+)`", cells[1])
    return rows


def test_the_readme_lists_every_column_of_every_built_in_pipeline() -> None:
    table = columns_table()
    assert table["every pipeline"] == list(BOOKKEEPING_COLUMNS)
    for name, factory in BUILTINS.items():
        row = next(columns for first, columns in table.items() if f"`{name}`" in first)
        assert row == list(factory().output_columns), name


def test_the_readme_configuration_example_is_accepted(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    example = re.search(r"```toml\n(\[sheet\].*?)```", text, re.DOTALL)
    assert example is not None
    config = tmp_path / "sheet.toml"
    config.write_text(example.group(1), encoding="utf-8")
    settings = load_settings(config_files=[config], environ={})
    assert dict(settings.output_columns)["Name"] == "Found name"
    assert dict(settings.output_columns)["Job ID"] == "sheetbatch job"
    assert settings.overwrite == ("Score",)
