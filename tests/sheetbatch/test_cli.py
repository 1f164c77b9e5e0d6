"""`sheetbatch run / status / events` end to end, in real subprocesses, on CSV sheets."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from progress import open_store
from tests.support.cli import read_csv, sheetbatch, start_sheetbatch, write_csv

SLOW = "tests.support.pipelines:slow"


def companies(tmp_path: Path, n: int, *, fail: tuple[int, ...] = ()) -> Path:
    rows = [[f"Company {i}", f"https://{'fail' if i in fail else 'ok'}{i}.test"] for i in range(n)]
    return write_csv(tmp_path / "companies.csv", ["Company", "Website"], rows)


def wait_for_rows(
    sheet: Path, ready: Callable[[list[dict[str, str]]], bool], timeout: float = 60
) -> None:
    """Poll the sheet (as an operator watching it would) until `ready(rows)`."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            rows = read_csv(sheet) if sheet.exists() else []
        if rows and ready(rows):
            return
        time.sleep(0.05)
    pytest.fail(f"the sheet never got there: {[r.get('Status') for r in rows]}")


def slow_run(sheet: Path, tmp_path: Path) -> list[str]:
    """`run` with the slow test pipeline, 2 rows at a time, flushing every 0.2 s."""
    return [
        "run",
        str(sheet),
        "--pipeline",
        SLOW,
        "--db",
        db(tmp_path),
        "--concurrency",
        "2",
        "--flush-interval",
        "0.2",
    ]


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'progress.db'}"


def test_run_processes_every_row_and_writes_results_into_the_sheet(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 5)
    out = sheetbatch(
        ["run", str(sheet), "--pipeline", "noop", "--db", db(tmp_path), "--json"], cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    snap = json.loads(out.stdout)
    assert snap["status"] == "completed"
    assert snap["counts"]["succeeded"] == 5 and snap["total"] == 5
    rows = read_csv(sheet)
    assert [r["Status"] for r in rows] == ["completed"] * 5
    assert [r["Name"] for r in rows] == [f"Company {i}" for i in range(5)]
    ids = [r["Job ID"] for r in rows]
    assert len(set(ids)) == 5 and all(i.startswith("j-") for i in ids)
    assert all(r["Updated"] for r in rows)
    # The job id in the sheet is the one the store knows, for that very row.
    with open_store(db(tmp_path)) as store:
        for number, r in enumerate(rows, start=2):
            job = store.job(r["Job ID"])
            assert job["row"] == number and job["inputs"]["Company"] == r["Company"]


def test_one_bad_row_fails_alone_and_the_exit_code_says_so(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 4, fail=(1,))
    out = sheetbatch(
        ["run", str(sheet), "--pipeline", SLOW, "--db", db(tmp_path), "--json"],
        cwd=tmp_path,
        SHEETBATCH_TEST_PHASE_SECONDS="0.01",
    )
    assert out.returncode == 1, out.stderr
    rows = read_csv(sheet)
    assert rows[1]["Status"] == "failed: crawl: cannot crawl https://fail1.test"
    assert rows[1]["Error"] == "crawl: cannot crawl https://fail1.test"
    assert [rows[i]["Status"] for i in (0, 2, 3)] == ["completed"] * 3
    assert rows[0]["Name"] == "COMPANY 0"


def test_a_row_without_a_website_fails_with_a_clear_reason(tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "c.csv", ["Company", "Website"], [["Acme", ""], ["", ""], ["Beta", "x.test"]]
    )
    out = sheetbatch(
        ["run", str(sheet), "--db", db(tmp_path), "--json", "--allow-host", "127.0.0.1"],
        cwd=tmp_path,
    )
    rows = read_csv(sheet)
    assert rows[0]["Status"].startswith("failed: input: no website")
    assert not rows[1]["Status"]  # an empty row is skipped, not failed
    assert rows[2]["Status"].startswith("failed: resolve:")
    assert out.returncode == 1


@pytest.mark.parametrize(
    ("header", "args", "message"),
    [
        (["Company", "URL"], [], "Website"),
        (["Company", "Website"], ["--pipeline", "nope"], "unknown pipeline 'nope'"),
        (["Company", "Website"], ["--concurrency", "0"], "concurrency"),
    ],
)
def test_bad_input_exits_2_with_an_error_naming_it(
    tmp_path: Path, header: list[str], args: list[str], message: str
) -> None:
    sheet = write_csv(tmp_path / "c.csv", header, [["Acme", "acme.test"]])
    out = sheetbatch(["run", str(sheet), "--db", db(tmp_path), *args], cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr


def test_a_missing_sheet_exits_2(tmp_path: Path) -> None:
    out = sheetbatch(["run", str(tmp_path / "nope.csv"), "--db", db(tmp_path)], cwd=tmp_path)
    assert out.returncode == 2 and "nope.csv" in out.stderr


def test_scraped_formulas_stay_text(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 1)
    out = sheetbatch(
        ["run", str(sheet), "--pipeline", "tests.support.pipelines:formula", "--db", db(tmp_path)],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    row = read_csv(sheet)[0]
    assert row["Name"] == '\'=HYPERLINK("http://evil.test","click")'
    assert row["Description"].startswith("'+cmd")


def test_statuses_appear_in_the_sheet_while_the_batch_runs(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 6)
    proc = start_sheetbatch(
        slow_run(sheet, tmp_path),
        cwd=tmp_path,
        SHEETBATCH_TEST_PHASE_SECONDS="0.3",
    )
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                seen.update(r.get("Status", "") for r in read_csv(sheet))
            time.sleep(0.05)
    finally:
        proc.communicate(timeout=60)
    assert "queued" in seen
    assert any(s.startswith("processing (2/4 crawl)") for s in seen)
    assert "completed" in seen
    assert proc.returncode == 0


def test_kill_9_then_run_again_resumes_without_losing_or_redoing_rows(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 8)
    args = slow_run(sheet, tmp_path)
    proc = start_sheetbatch(args, cwd=tmp_path, SHEETBATCH_TEST_PHASE_SECONDS="0.15")
    try:
        wait_for_rows(
            sheet,
            lambda rows: (
                sum(r.get("Status") == "completed" for r in rows) >= 2
                and any(r.get("Status", "").startswith("processing") for r in rows)
            ),
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    done_before = {r["Job ID"] for r in read_csv(sheet) if r["Status"] == "completed"}
    out = sheetbatch([*args, "--json"], cwd=tmp_path, SHEETBATCH_TEST_PHASE_SECONDS="0.01")
    assert out.returncode == 0, out.stderr
    rows = read_csv(sheet)
    assert [r["Status"] for r in rows] == ["completed"] * 8
    with open_store(db(tmp_path)) as store:
        batches = store.batches()
        assert len(batches) == 1  # the interrupted batch was resumed, not duplicated
        batch_id = batches[0]["batch_id"]
        assert store.batch(batch_id)["counts"]["succeeded"] == 8
        events = store.events_after(0, batch_id=batch_id, limit=100_000)
        finished = [e["job_id"] for e in events if e["type"] == "job_succeeded"]
        assert sorted(finished) == sorted(r["Job ID"] for r in rows)  # exactly once each
        started = [e["job_id"] for e in events if e["type"] == "job_started"]
        for job_id in done_before:
            assert started.count(job_id) == 1  # completed rows were not redone


def test_ctrl_c_cancels_cleanly_and_flushes_statuses(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 6)
    proc = start_sheetbatch(
        slow_run(sheet, tmp_path),
        cwd=tmp_path,
        SHEETBATCH_TEST_PHASE_SECONDS="0.3",
    )
    wait_for_rows(
        sheet, lambda rows: any(r.get("Status", "").startswith("processing") for r in rows)
    )
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    statuses = [r["Status"] for r in read_csv(sheet)]
    assert all(s in ("completed", "cancelled") for s in statuses), statuses
    assert "cancelled" in statuses
    # A later run picks the cancelled rows up again and finishes them.
    out = sheetbatch(
        ["run", str(sheet), "--pipeline", SLOW, "--db", db(tmp_path)],
        cwd=tmp_path,
        SHEETBATCH_TEST_PHASE_SECONDS="0.01",
    )
    assert out.returncode == 0, out.stderr
    assert [r["Status"] for r in read_csv(sheet)] == ["completed"] * 6


def test_retry_failed_redoes_only_failed_rows(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 3, fail=(2,))
    base = ["run", str(sheet), "--pipeline", SLOW, "--db", db(tmp_path)]
    assert sheetbatch(base, cwd=tmp_path, SHEETBATCH_TEST_PHASE_SECONDS="0.01").returncode == 1
    first = read_csv(sheet)
    out = sheetbatch(base, cwd=tmp_path, SHEETBATCH_TEST_PHASE_SECONDS="0.01")
    assert out.returncode == 0  # nothing left to do: no row selected
    assert read_csv(sheet) == first
    again = sheetbatch(
        [*base, "--retry-failed", "--json"], cwd=tmp_path, SHEETBATCH_TEST_PHASE_SECONDS="0.01"
    )
    assert json.loads(again.stdout)["total"] == 1
    rows = read_csv(sheet)
    assert rows[0]["Job ID"] == first[0]["Job ID"] and rows[1]["Job ID"] == first[1]["Job ID"]
    assert rows[2]["Job ID"] != first[2]["Job ID"]


def test_status_and_events_read_the_store(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 2)
    out = sheetbatch(
        ["run", str(sheet), "--pipeline", "noop", "--db", db(tmp_path), "--json"], cwd=tmp_path
    )
    batch_id = json.loads(out.stdout)["batch_id"]
    status = sheetbatch(["status", batch_id, "--db", db(tmp_path), "--json"], cwd=tmp_path)
    assert json.loads(status.stdout)["counts"]["succeeded"] == 2
    listing = sheetbatch(["status", "--db", db(tmp_path)], cwd=tmp_path)
    assert batch_id in listing.stdout
    events = sheetbatch(["events", batch_id, "--db", db(tmp_path), "--json"], cwd=tmp_path)
    lines = [json.loads(line) for line in events.stdout.splitlines()]
    assert {"id", "type", "batch_id", "job_id", "time", "data"} <= set(lines[0])
    assert lines[0]["type"] == "batch_created" and lines[-1]["type"] == "batch_finished"
    assert [e["id"] for e in lines] == sorted(e["id"] for e in lines)
    after = sheetbatch(
        ["events", batch_id, "--after", str(lines[2]["id"]), "--db", db(tmp_path), "--json"],
        cwd=tmp_path,
    )
    assert len(after.stdout.splitlines()) == len(lines) - 3
    unknown = sheetbatch(["status", "b-nope", "--db", db(tmp_path)], cwd=tmp_path)
    assert unknown.returncode == 2 and "b-nope" in unknown.stderr


def test_operator_edits_during_a_run_survive_and_statuses_land_on_the_right_rows(
    tmp_path: Path,
) -> None:
    """Sort, insert and delete rows and edit other cells while the batch runs."""
    sheet = write_csv(
        tmp_path / "c.csv",
        ["Company", "Website", "Notes"],
        [[f"Company {i}", f"https://ok{i}.test", ""] for i in range(8)],
    )
    proc = start_sheetbatch(
        slow_run(sheet, tmp_path),
        cwd=tmp_path,
        SHEETBATCH_TEST_PHASE_SECONDS="0.2",
    )
    try:
        wait_for_rows(
            sheet,
            lambda rows: (
                all(r.get("Job ID") for r in rows)
                and any(r.get("Status", "").startswith("processing") for r in rows)
            ),
        )
        # The operator sorts descending, adds a note, inserts a new row on top and deletes
        # "Company 5" - written atomically, as a spreadsheet program saves.
        rows = read_csv(sheet)
        header = list(rows[0].keys())
        rows.sort(key=lambda r: r["Company"], reverse=True)
        for r in rows:
            r["Notes"] = f"note for {r['Company']}"
        rows = [r for r in rows if r["Company"] != "Company 5"]
        inserted = dict.fromkeys(header, "")
        inserted.update(Company="Inserted", Notes="mine")
        rows.insert(0, inserted)
        tmp = sheet.with_suffix(".tmp")
        write_csv(tmp, header, [[r[h] for h in header] for r in rows])
        tmp.replace(sheet)
    finally:
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    final = read_csv(sheet)
    assert [r["Company"] for r in final][:2] == ["Inserted", "Company 7"]
    assert "Company 5" not in [r["Company"] for r in final]
    assert final[0]["Status"] == "" and final[0]["Notes"] == "mine"  # the new row untouched
    with open_store(db(tmp_path)) as store:
        for r in final[1:]:
            assert r["Notes"] == f"note for {r['Company']}"  # the operator's edit survived
            assert r["Status"] == "completed" and r["Name"] == r["Company"].upper()
            assert store.job(r["Job ID"])["inputs"]["Company"] == r["Company"]
        # The deleted row's job is noted in its events, not written elsewhere.
        notes = [e for e in store.events_after(0, limit=100_000) if e["type"] == "job_note"]
        assert any("deleted" in e["data"]["message"] for e in notes)


def test_an_xlsx_sheet_runs_end_to_end_and_scraped_formulas_stay_strings(tmp_path: Path) -> None:
    from openpyxl import Workbook, load_workbook

    path = tmp_path / "companies.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    sheet.append(["Company", "Website", "Zip"])
    sheet.append(["Acme", "https://acme.test", "00123"])
    sheet.append(["Beta", "https://beta.test", "00456"])
    book.save(path)
    out = sheetbatch(
        [
            "run",
            f"{path}#Leads",
            "--pipeline",
            "tests.support.pipelines:formula",
            "--db",
            db(tmp_path),
            "--json",
        ],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    leads = load_workbook(path)["Leads"]
    header = [c.value for c in leads[1]]
    rows = [
        dict(zip(header, (c.value for c in r), strict=False)) for r in leads.iter_rows(min_row=2)
    ]
    assert [r["Status"] for r in rows] == ["completed", "completed"]
    assert [r["Zip"] for r in rows] == ["00123", "00456"]  # untouched cells keep their text
    name_cells = [r[header.index("Name")] for r in leads.iter_rows(min_row=2)]
    assert all(c.data_type == "s" and c.value.startswith("=HYPERLINK") for c in name_cells)


def test_rows_finished_in_the_store_but_stale_in_the_sheet_are_written_not_redone(
    tmp_path: Path,
) -> None:
    """The last flush never reached the sheet (it was locked, Google was down): run again."""
    sheet = companies(tmp_path, 3, fail=(1,))
    base = ["run", str(sheet), "--pipeline", SLOW, "--db", db(tmp_path)]
    assert sheetbatch(base, cwd=tmp_path, SHEETBATCH_TEST_PHASE_SECONDS="0.01").returncode == 1
    done = read_csv(sheet)
    stale = [{**r, "Status": "processing (3/4 extract)", "Name": ""} for r in done]
    header = list(done[0])
    write_csv(sheet, header, [[r[h] for h in header] for r in stale])
    rerun = sheetbatch(base, cwd=tmp_path, SHEETBATCH_TEST_PHASE_SECONDS="0.01")
    assert rerun.returncode == 0, rerun.stderr
    assert (
        "nothing to do" in rerun.stderr
        and "3 rows finished before, written from the store" in rerun.stderr
    )

    def cells(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v or "" for k, v in r.items()} for r in rows]

    assert cells(read_csv(sheet)) == cells(done)
    with open_store(db(tmp_path)) as store:
        # The rerun had nothing to do: it wrote the store's statuses and recorded no batch.
        assert [b["total"] for b in store.batches()] == [3]
        started = [e for e in store.events_after(0) if e["type"] == "job_started"]
        assert len(started) == 3


def test_input_columns_can_have_other_names(tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "c.csv", ["Firma", "Homepage"], [["Acme", "https://acme.test"]])
    args = ["run", str(sheet), "--pipeline", "noop", "--db", db(tmp_path)]
    missing = sheetbatch(args, cwd=tmp_path)
    assert missing.returncode == 2 and "Company" in missing.stderr
    out = sheetbatch(
        [*args, "--company-column", "firma", "--website-column", "Home Page"], cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    row = read_csv(sheet)[0]
    assert row["Status"] == "completed" and row["Name"] == "Acme"
