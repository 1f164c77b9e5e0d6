"""Running the real `sheetbatch` command in a subprocess, as a user does."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # No empty entry: it would put the current directory on the path, which the installed
    # console script does not do.
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    env.pop("SHEETBATCH_DB", None)
    env.update(extra)
    return env


def sheetbatch(
    args: Sequence[str], *, cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `sheetbatch ARGS` to the end; its completed process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "sheetbatch", *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_sheetbatch(args: Sequence[str], *, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """Start `sheetbatch ARGS` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "sheetbatch", *args],
        cwd=cwd,
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows as an operator's spreadsheet shows them: a cell past a short row's end is ""
    (untouched rows stay short while new columns are added to the header)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f, restval=""))
