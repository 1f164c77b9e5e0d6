"""The README's settings table is the one generated from the settings: a setting added
without its meaning, or without regenerating the README, fails here."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from sheetbatch import settings_table
from sheetbatch.config import SECTIONS, Settings, env_variables
from sheetbatch.settings_table import MEANINGS, markdown, readme_table, rows

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_has_a_meaning_and_no_meaning_is_left_over() -> None:
    names = {f.name for f in fields(Settings)}
    assert set(MEANINGS) - names == set(), "meanings of settings that no longer exist"
    assert names - set(MEANINGS) == set(), "settings without a line in MEANINGS"
    assert all(m.strip() and "\n" not in m for m in MEANINGS.values())


def test_the_readme_table_is_the_generated_one() -> None:
    assert readme_table(README.read_text(encoding="utf-8")) == markdown(), (
        "the README's settings table is stale: python -m sheetbatch.settings_table "
        "--write README.md"
    )


def test_the_table_has_a_row_per_key_of_every_section_then_the_secrets() -> None:
    table = rows()
    keyed = [(r.section, r.key) for r in table if r.section]
    assert keyed == [(s, k) for s, keys in SECTIONS.items() for k in keys]
    secrets = [r.name for r in table if not r.section]
    assert "api_token" in secrets and len(table) == len(keyed) + len(secrets)
    lines = markdown().splitlines()
    assert len(lines) == 2 + len(table)
    lease = next(line for line in lines if "`SHEETBATCH_RUN_LEASE_SECONDS`" in line)
    assert lease.startswith("| `[run]` | `lease_seconds` |") and "`30.0`" in lease
    store = next(line for line in lines if "`SHEETBATCH_STORE_URL`" in line)
    assert "`SHEETBATCH_STORE_URL`, `SHEETBATCH_DB`" in store
    assert '`"sqlite:///.sheetbatch/progress.db"`' in store
    # Five cells a line: six unescaped pipes.
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 6 for line in lines), "a stray |"


def test_a_new_block_needs_only_its_section_entry_and_its_meanings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a new [block] would add itself: a SECTIONS entry, and its lines in MEANINGS
    # (here on existing fields, as the dataclass cannot grow in a test).
    monkeypatch.setitem(SECTIONS, "extra", {"budget": "concurrency"})
    assert env_variables()["concurrency"][0] == "SHEETBATCH_RUN_CONCURRENCY"
    assert "SHEETBATCH_EXTRA_BUDGET" in env_variables()["concurrency"]
    assert any(r.section == "extra" and r.key == "budget" for r in rows())
    monkeypatch.delitem(MEANINGS, "concurrency")
    with pytest.raises(KeyError, match="'concurrency' has no line in"):
        markdown()


def test_the_command_writes_and_checks_a_readme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# x\n\nbefore\n\n{settings_table.BEGIN}\n| stale |\n{settings_table.END}\nafter\n",
        encoding="utf-8",
    )
    assert settings_table.main(["--check", str(readme)]) == 1
    assert "stale" in capsys.readouterr().err
    assert settings_table.main(["--write", str(readme)]) == 0
    assert settings_table.main(["--check", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith(f"{settings_table.END}\nafter\n")
    assert settings_table.main([]) == 0
    assert capsys.readouterr().out == markdown()
