"""Installed as users install it: a wheel, not the checkout, runs the demo in an empty folder."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel and unpacked into a folder of its own (no dependencies)."""
    wheels = tmp_path_factory.mktemp("wheels")
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("sheetbatch-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_the_wheel_runs_the_demo_in_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    # Only the wheel's copy of our packages (dependencies from this interpreter's environment);
    # neither the checkout nor the current directory is on the path.
    env["PYTHONPATH"] = str(installed)
    env["PYTHONSAFEPATH"] = "1"
    env.pop("SHEETBATCH_DB", None)
    where = subprocess.run(
        [sys.executable, "-c", "import sheetbatch, progress; print(sheetbatch.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(installed))
    demo = subprocess.run(
        [sys.executable, "-m", "sheetbatch", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    with open(tmp_path / ".sheetbatch" / "demo" / "companies.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    statuses = [row["Status"] for row in rows]
    assert statuses.count("completed") == 8
    assert all(s.startswith("failed: ") for s in statuses if s != "completed")
    assert (tmp_path / ".sheetbatch" / "progress.db").is_file()
