"""The operator's columns are never overwritten: `sheetbatch run` on sheets that already have
columns named like ours, in real subprocesses on real CSV files."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path

import pytest

from progress import open_store
from tests.support.cli import read_csv, sheetbatch, start_sheetbatch, write_csv

SLOW = "tests.support.pipelines:slow"


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'progress.db'}"


def run(tmp_path: Path, sheet: Path, *args: str) -> tuple[int, str, str]:
    out = sheetbatch(
        ["run", str(sheet), "--pipeline", "noop", "--db", db(tmp_path), *args], cwd=tmp_path
    )
    return out.returncode, out.stdout, out.stderr


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_column_named_like_an_output_holding_the_operators_values_is_refused(
    tmp_path: Path,
) -> None:
    sheet = write_csv(
        tmp_path / "companies.csv",
        ["Company", "Website", "Name"],
        [["Acme", "https://acme.test", "Alice Smith (our contact)"], ["Beta", "beta.test", ""]],
    )
    before = sheet.read_bytes()
    code, _, stderr = run(tmp_path, sheet)
    assert code == 2
    assert error_lines(stderr) == [
        "error: companies.csv: column 'Name' holds values sheetbatch did not write (row 2: "
        "'Alice Smith (our contact)'); map the output elsewhere with "
        '--output-column Name="Found name", or allow it with --overwrite Name'
    ]
    assert sheet.read_bytes() == before  # not even a header cell was added
    with open_store(db(tmp_path)) as store:
        assert store.batches() == []


def test_output_column_maps_an_output_elsewhere_and_the_operators_column_is_kept(
    tmp_path: Path,
) -> None:
    sheet = write_csv(
        tmp_path / "companies.csv",
        ["Company", "Website", "Name"],
        [["Acme", "https://acme.test", "Alice Smith (our contact)"], ["Beta", "beta.test", ""]],
    )
    code, _, stderr = run(tmp_path, sheet, "--output-column", "Name=Found name")
    assert code == 0, stderr
    rows = read_csv(sheet)
    assert [r["Name"] for r in rows] == ["Alice Smith (our contact)", ""]
    assert [r["Found name"] for r in rows] == ["Acme", "Beta"]
    # A rerun knows these cells are ours now: no refusal, nothing to do.
    code, _, stderr = run(tmp_path, sheet, "--output-column", "Name=Found name")
    assert code == 0 and "nothing to do" in stderr, stderr


def test_overwrite_allows_writing_into_the_operators_column(tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "c.csv",
        ["Company", "Website", "Score"],
        [["Acme", "https://acme.test", "=2*3"], ["Beta", "beta.test", "7"]],
    )
    code, _, stderr = run(tmp_path, sheet)
    assert code == 2
    assert "column 'Score' holds values sheetbatch did not write (row 2: '=2*3')" in stderr
    assert "--overwrite Score" in stderr
    code, _, stderr = run(tmp_path, sheet, "--overwrite", "score")
    assert code == 0, stderr
    scores = [r["Score"] for r in read_csv(sheet)]
    assert all(s.isdigit() for s in scores) and scores != ["=2*3", "7"]


def test_the_operators_own_job_ids_are_never_replaced(tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "c.csv",
        ["Company", "Website", "Job ID"],
        [["Acme", "https://acme.test", "JOB-1"], ["Beta", "beta.test", "JOB-2"]],
    )
    before = sheet.read_bytes()
    code, _, stderr = run(tmp_path, sheet)
    assert code == 2
    assert (
        "column 'Job ID' holds values sheetbatch did not write (row 2: 'JOB-1'); map the "
        'output elsewhere with --output-column "Job ID"="sheetbatch Job ID", or allow it with '
        '--overwrite "Job ID"'
    ) in stderr
    assert sheet.read_bytes() == before
    code, _, stderr = run(tmp_path, sheet, "--output-column", "Job ID=sheetbatch Job ID")
    assert code == 0, stderr
    rows = read_csv(sheet)
    assert [r["Job ID"] for r in rows] == ["JOB-1", "JOB-2"]
    assert all(r["sheetbatch Job ID"].startswith("j-") for r in rows)
    assert [r["Status"] for r in rows] == ["completed", "completed"]


def test_bookkeeping_columns_can_be_renamed_and_a_rerun_finds_them(tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "c.csv",
        ["Company", "Website", "Status", "Error"],
        [["Acme", "https://acme.test", "", "a note"], ["Beta", "beta.test", "", ""]],
    )
    code, _, stderr = run(tmp_path, sheet)
    assert code == 2 and "column 'Error' holds values" in stderr
    mapped = ["--output-column", "Error=Our error", "--output-column", "Status=Our status"]
    code, _, stderr = run(tmp_path, sheet, *mapped)
    assert code == 0, stderr
    rows = read_csv(sheet)
    assert [r["Error"] for r in rows] == ["a note", ""]
    assert [r["Status"] for r in rows] == ["", ""]
    assert [r["Our status"] for r in rows] == ["completed", "completed"]
    code, _, stderr = run(tmp_path, sheet, *mapped)
    assert code == 0 and "2 rows already completed" in stderr, stderr


def test_a_resumed_batch_keeps_its_columns(tmp_path: Path) -> None:
    """A batch started with --output-column is not resumed into other columns."""
    sheet = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["Acme", "https://a.test"]])
    args = ["run", str(sheet), "--pipeline", SLOW, "--db", db(tmp_path), "--flush-interval", "0.1"]
    proc = start_sheetbatch(
        [*args, "--output-column", "Name=Found name"],
        cwd=tmp_path,
        SHEETBATCH_TEST_PHASE_SECONDS="5",
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
                if read_csv(sheet)[0]["Status"].startswith("processing"):
                    break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    with open_store(db(tmp_path)) as store:
        batch_id = store.batches()[0]["batch_id"]
    out = sheetbatch(args, cwd=tmp_path)
    assert out.returncode == 2
    assert f"batch {batch_id} of this sheet writes Name into 'Found name'" in out.stderr
    out = sheetbatch(
        [*args, "--output-column", "Name=Found name"],
        cwd=tmp_path,
        SHEETBATCH_TEST_PHASE_SECONDS="0.01",
    )
    assert out.returncode == 0, out.stderr
    assert read_csv(sheet)[0]["Found name"] == "ACME"


def test_the_configuration_maps_outputs_too(tmp_path: Path) -> None:
    config = tmp_path / "sheet.toml"
    config.write_text(
        '[sheet]\noutput_columns = {Name = "Found name", Score = "Our score"}\n'
        'overwrite = ["Final URL"]\n',
        encoding="utf-8",
    )
    sheet = write_csv(
        tmp_path / "c.csv",
        ["Company", "Website", "Name", "Final URL"],
        [["Acme", "https://acme.test", "Alice", "old"]],
    )
    out = sheetbatch(
        ["--config", str(config), "run", str(sheet), "--pipeline", "noop", "--db", db(tmp_path)],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    row = read_csv(sheet)[0]
    assert row["Name"] == "Alice" and row["Found name"] == "Acme"
    assert row["Our score"].isdigit() and row["Final URL"] == "https://acme.test"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output-column", "Nmae=Found"], "the run writes no output 'Nmae'"),
        (["--output-column", "Name"], "--output-column: output_columns must map outputs"),
        (["--output-column", "Name=Score"], "'Name' and 'Score' would both be written"),
        (["--output-column", "Name=Website"], "a column the pipeline reads its input from"),
        (["--overwrite", "Colour"], "--overwrite Colour: the run writes no column 'Colour'"),
    ],
)
def test_bad_column_options_exit_2_naming_them(
    tmp_path: Path, args: list[str], message: str
) -> None:
    sheet = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["Acme", "acme.test"]])
    before = sheet.read_bytes()
    code, _, stderr = run(tmp_path, sheet, *args)
    assert code == 2 and message in stderr, stderr
    assert len(error_lines(stderr)) == 1
    assert sheet.read_bytes() == before


def test_status_set_by_hand_is_not_a_refusal_the_rows_are_skipped_and_counted(
    tmp_path: Path,
) -> None:
    sheet = write_csv(
        tmp_path / "c.csv",
        ["Company", "Website", "Status"],
        [
            ["Acme", "https://acme.test", "do not touch"],
            ["Beta", "https://beta.test", ""],
            ["", "", ""],
            ["Cobalt", "https://cobalt.test", "do not touch"],
            ["Dunmore", "https://dunmore.test", "do not touch"],
            ["", "", ""],
        ],
    )
    code, _, stderr = run(tmp_path, sheet)
    assert code == 0, stderr
    assert "3 rows skipped (Status set by hand: 'do not touch')" in stderr
    assert "2 empty rows" in stderr
    assert "1 of 1 row done (100%)" in stderr and "1 rows" not in stderr
    rows = read_csv(sheet)
    hand = "do not touch"
    assert [r["Status"] for r in rows] == [hand, "completed", "", hand, hand, ""]
    assert rows[0]["Job ID"] == "" and rows[0]["Name"] == ""  # a skipped row is not written
    out = sheetbatch(
        ["run", str(sheet), "--pipeline", "noop", "--db", db(tmp_path), "--json"], cwd=tmp_path
    )
    answer = json.loads(out.stdout)
    assert answer["batch_id"] is None and answer["nothing_to_do"] is True
    skipped = answer["selection"]["skipped"]
    assert skipped["by_hand"] == {"do not touch": 3} and skipped["empty"] == 2
    assert skipped["completed"] == 1 and skipped["total"] == 6


def test_a_sheet_run_with_another_store_is_refused_with_a_hint(tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["Acme", "https://a.test"]])
    assert run(tmp_path, sheet)[0] == 0
    job_id = read_csv(sheet)[0]["Job ID"]
    before = sheet.read_bytes()
    out = sheetbatch(
        ["run", str(sheet), "--pipeline", "noop", "--db", f"sqlite:///{tmp_path / 'other.db'}"],
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert f"column 'Job ID' holds values sheetbatch did not write (row 2: '{job_id}')" in (
        out.stderr
    )
    assert "looks like a sheetbatch job id: if another progress store ran this sheet" in (
        out.stderr
    )
    assert sheet.read_bytes() == before
