"""The README's "your own pipeline" example, run through the CLI as an operator runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.cli import ROOT, read_csv, sheetbatch

EXAMPLE = ROOT / "examples" / "own_pipeline"


def test_the_example_pipeline_runs_from_its_own_folder(tmp_path: Path) -> None:
    folder = tmp_path / "own"
    shutil.copytree(EXAMPLE, folder)
    done = sheetbatch(
        [
            "run",
            "leads.csv",
            "--pipeline",
            "my_pipeline:pipeline",
            "--db",
            f"sqlite:///{tmp_path}/p.db",
        ],
        cwd=folder,
        # As the console script runs: the current directory is not on the path by itself.
        PYTHONSAFEPATH="1",
    )
    assert done.returncode == 1, done.stderr  # one row has no company name: it fails alone
    rows = read_csv(folder / "leads.csv")
    assert [(r["Clean name"], r["Grade"], r["Status"]) for r in rows] == [
        ("Acme Widgets", "A", "completed"),
        ("Bluefin", "B", "completed"),
        ("Cobalt", "B", "completed"),
        ("", "", "failed: tidy: no company name"),
    ]
    assert all(r["Job ID"].startswith("j-") for r in rows)


def test_a_missing_module_is_a_clear_error(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE / "leads.csv", tmp_path / "leads.csv")
    done = sheetbatch(
        [
            "run",
            "leads.csv",
            "--pipeline",
            "nowhere_to_be_found:pipeline",
            "--db",
            f"sqlite:///{tmp_path}/p.db",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "cannot import 'nowhere_to_be_found'" in done.stderr
    assert "Traceback" not in done.stderr
