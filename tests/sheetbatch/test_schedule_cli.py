"""`sheetbatch schedule …` and `[[schedule]]` config tables, run as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from progress import open_store
from tests.support.cli import cli_env, sheetbatch, write_csv


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'p.db'}"


def test_add_show_list_pause_resume_ticks_and_delete(tmp_path: Path) -> None:
    write_csv(tmp_path / "leads.csv", ["Company", "Website"], [["Acme", "https://acme.test"]])
    db = ["--db", _db(tmp_path)]
    added = sheetbatch(
        [
            "schedule",
            "add",
            "leads.csv",
            "--cron",
            "30 2 * * *",
            "--timezone",
            "America/New_York",
            "--name",
            "nightly",
            *db,
        ],
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    sid = added.stdout.strip()
    assert sid.startswith("s-")
    second = sheetbatch(
        ["schedule", "add", "leads.csv", "--every", "5m", "--json", *db], cwd=tmp_path
    )
    assert json.loads(second.stdout)["trigger"]["seconds"] == 300
    shown = sheetbatch(["schedule", "show", "nightly", *db], cwd=tmp_path)
    assert "At 02:30 AM (America/New_York)" in shown.stdout
    fire_lines = [line.strip() for line in shown.stdout.splitlines() if "T02:30:00" in line]
    assert len(fire_lines) == 5 and all(line[-6:] in ("-05:00", "-04:00") for line in fire_lines)
    listed = sheetbatch(["schedule", "list", "--json", *db], cwd=tmp_path)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["nightly", "leads-every-5m"]
    assert (
        sheetbatch(["schedule", "pause", sid, *db], cwd=tmp_path).stdout.strip() == f"{sid}: paused"
    )
    paused = json.loads(sheetbatch(["schedule", "show", sid, "--json", *db], cwd=tmp_path).stdout)
    assert paused["paused"] is True
    # Kept absolute: a scheduler started in another directory runs the same file.
    assert paused["sheet"] == str((tmp_path / "leads.csv").resolve())
    sheetbatch(["schedule", "resume", sid, *db], cwd=tmp_path)
    trig = sheetbatch(["schedule", "trigger", sid, "--json", *db], cwd=tmp_path)
    assert trig.returncode == 0 and "no scheduler is running" in trig.stderr
    tick = json.loads(trig.stdout)
    ticks = sheetbatch(["schedule", "ticks", sid, "--json", *db], cwd=tmp_path)
    (line,) = ticks.stdout.splitlines()
    got = json.loads(line)
    for key in (
        "tick_id",
        "schedule_id",
        "scheduled_for",
        "started",
        "finished",
        "state",
        "reason",
        "batch_id",
        "rows",
        "scheduler",
    ):
        assert key in got
    assert got["tick_id"] == tick["tick_id"] and got["state"] == "queued"
    preview = sheetbatch(["schedule", "preview", sid, *db], cwd=tmp_path)
    assert "1 of 1 rows would be processed" in preview.stdout and "Acme" in preview.stdout
    assert sheetbatch(["schedule", "delete", sid, *db], cwd=tmp_path).returncode == 0
    gone = sheetbatch(["schedule", "show", sid, *db], cwd=tmp_path)
    assert gone.returncode == 2 and "unknown schedule" in gone.stderr


def test_bad_input_exits_2_with_one_line_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    write_csv(tmp_path / "leads.csv", ["Company", "Website"], [])
    db = ["--db", _db(tmp_path)]
    for args, named in [
        (["--every", "5 minutes"], "--every"),
        (["--cron", "0 7 * *"], "5 fields"),
        (["--cron", "0 7 * * *", "--timezone", "Berlin"], "--timezone"),
        (["--every", "5m", "--cron", "0 7 * * *"], "--every"),
        (["--every", "5m", "--pipeline", "nope:missing"], "nope"),
    ]:
        out = sheetbatch(["schedule", "add", "leads.csv", *args, *db], cwd=tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], out.stderr
    store = open_store(_db(tmp_path))
    try:
        assert store.schedules() == []
    finally:
        store.close()


def _run_scheduler_once(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """Start `sheetbatch scheduler` (it applies [[schedule]] tables), stop it with SIGTERM."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sheetbatch",
            "--config",
            str(config),
            "scheduler",
            "--db",
            _db(tmp_path),
        ],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "started on" in line or line.startswith("error:"):
            break
    if "started on" in line:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, line + err)


def test_config_schedules_are_created_once_and_updated_by_name(tmp_path: Path) -> None:
    config = tmp_path / "sched.toml"
    config.write_text(
        '[[schedule]]\nname = "mornings"\nsheet = "leads.csv"\ncron = "0 7 * * 1-5"\n'
        'timezone = "Europe/Berlin"\n'
    )
    for _ in range(2):
        assert _run_scheduler_once(tmp_path, config).returncode == 0
    config.write_text('[[schedule]]\nname = "mornings"\nsheet = "leads.csv"\nevery = "1h"\n')
    assert _run_scheduler_once(tmp_path, config).returncode == 0
    store = open_store(_db(tmp_path))
    try:
        (only,) = store.schedules()
        assert only.name == "mornings" and only.source == "config"
        assert only.trigger["kind"] == "interval" and only.trigger["seconds"] == 3600
    finally:
        store.close()
    config.write_text('[[schedule]]\nname = "x"\nsheet = "leads.csv"\nevery = "1h"\ncolor = 1\n')
    bad = _run_scheduler_once(tmp_path, config)
    assert bad.returncode == 2
    assert f"{config}: [[schedule]] #1: unknown key 'color'" in bad.stderr
