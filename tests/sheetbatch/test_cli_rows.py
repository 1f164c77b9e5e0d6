"""`sheetbatch run` says what happened to every row: skips, nothing to do, Ctrl-C, narrow
terminals, refused redirects and allow-listed local names. Real subprocesses."""

from __future__ import annotations

import re
import signal
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from progress import open_store
from sheetbatch.sites import SiteServer
from tests.sheetbatch.test_cli import companies, wait_for_rows
from tests.support.cli import read_csv, sheetbatch, start_sheetbatch, write_csv
from tests.support.sites import EXAMPLE_SITES

SLOW = "tests.support.pipelines:slow"
PHRASE = re.compile(
    r"\d+ of \d+ rows? done \(\d+%\)|(succeeded|failed|running|queued|cancelled) \d+|"
    r"ETA (\d+:\d\d|--:--)"
)


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'progress.db'}"


def test_a_rerun_with_nothing_to_do_says_so_and_records_no_batch(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 1)
    base = ["run", str(sheet), "--pipeline", "noop", "--db", db(tmp_path)]
    first = sheetbatch(base, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "1 row of c" in first.stderr.replace("companies", "c")
    assert "1 rows" not in first.stderr
    again = sheetbatch(base, cwd=tmp_path)
    assert again.returncode == 0
    assert again.stderr.strip() == "nothing to do in companies.csv: 1 row already completed"
    with open_store(db(tmp_path)) as store:
        assert len(store.batches()) == 1
    empty = write_csv(tmp_path / "empty.csv", ["Company", "Website"], [])
    out = sheetbatch(["run", str(empty), "--pipeline", "noop", "--db", db(tmp_path)], cwd=tmp_path)
    assert out.returncode == 0
    assert out.stderr.strip() == "nothing to do in empty.csv: the sheet has no data rows"
    with open_store(db(tmp_path)) as store:
        assert len(store.batches()) == 1


def test_after_ctrl_c_the_summary_does_not_claim_every_row_done(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 12)
    proc = start_sheetbatch(
        [*("run", str(sheet), "--pipeline", SLOW, "--db", db(tmp_path)), "--concurrency", "2"],
        cwd=tmp_path,
        SHEETBATCH_TEST_PHASE_SECONDS="0.3",
    )
    wait_for_rows(
        sheet, lambda rows: any(r.get("Status", "").startswith("processing") for r in rows)
    )
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    summary = [line for line in stderr.splitlines() if line.startswith("cancelled in")]
    assert len(summary) == 1, stderr
    done = re.search(r"(\d+) of 12 rows done \((\d+)%\)", summary[0])
    assert done is not None and int(done.group(1)) < 12 and int(done.group(2)) < 100
    cancelled = re.search(r"cancelled (\d+)", stderr)
    assert cancelled is not None and int(done.group(1)) + int(cancelled.group(1)) == 12
    assert "(100%)" not in summary[0]


def test_progress_lines_never_wrap_mid_phrase_at_80_columns(tmp_path: Path) -> None:
    sheet = companies(tmp_path, 30, fail=(3, 7))
    long_name = tmp_path / "a_rather_long_sheet_name_from_the_sales_team_q3_final_v2.csv"
    sheet.rename(long_name)
    out = sheetbatch(
        ["run", str(long_name), "--pipeline", SLOW, "--db", db(tmp_path), "--concurrency", "4"],
        cwd=tmp_path,
        COLUMNS="80",
        SHEETBATCH_TEST_PHASE_SECONDS="0.25",
    )
    assert out.returncode == 1, out.stderr
    lines = out.stderr.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    progress = [line for line in lines if re.match(r"\s*\d+ of 30 rows done", line)]
    assert len(progress) >= 2  # the plain (non-terminal) view printed as the batch ran
    index = lines.index(progress[0])
    # A progress line and its continuation are whole phrases joined by " · ".
    for line in lines[index : index + 2]:
        for phrase in line.strip().split(" · "):
            assert PHRASE.fullmatch(phrase), (phrase, line)


@pytest.fixture
def redirecting() -> Iterator[tuple[int, int]]:
    """A site on 127.0.0.1 that redirects every request to another loopback port."""
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    target = spare.getsockname()[1]

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{target}/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], target
    finally:
        server.shutdown()
        server.server_close()
        spare.close()


def test_a_redirect_refused_by_the_guard_says_so_in_the_sheet(
    tmp_path: Path, redirecting: tuple[int, int]
) -> None:
    port, target = redirecting
    sheet = write_csv(tmp_path / "c.csv", ["Company", "Website"], [["Acme", f"127.0.0.1:{port}"]])
    sheet.write_text(f"Company,Website\nAcme,http://127.0.0.1:{port}/\n", encoding="utf-8")
    out = sheetbatch(
        ["run", str(sheet), "--db", db(tmp_path), "--allow-host", f"127.0.0.1:{port}"],
        cwd=tmp_path,
    )
    assert out.returncode == 1
    row = read_csv(sheet)[0]
    assert row["Error"] == (
        f"resolve: redirect to http://127.0.0.1:{target}/ blocked (loopback address)"
    )


def test_allow_host_localhost_with_a_port_reaches_that_site(tmp_path: Path) -> None:
    with SiteServer(EXAMPLE_SITES) as server:
        port = server.port("acme")
        sheet = write_csv(
            tmp_path / "c.csv",
            ["Company", "Website"],
            [["Acme", f"http://localhost:{port}/"], ["Other", f"http://localhost:{port + 1}/"]],
        )
        out = sheetbatch(
            ["run", str(sheet), "--db", db(tmp_path), "--allow-host", f"localhost:{port}"],
            cwd=tmp_path,
        )
    rows = read_csv(sheet)
    assert rows[0]["Status"] == "completed", (rows, out.stderr)
    assert rows[0]["Name"] == "Acme Widgets GmbH"
    assert rows[1]["Status"].startswith("failed: resolve: not a URL")  # not allow-listed
    assert out.returncode == 1


def test_a_run_whose_final_statuses_cannot_be_written_exits_1_and_says_so(
    tmp_path: Path,
) -> None:
    sheet = companies(tmp_path, 4)
    args = ["run", str(sheet), "--pipeline", SLOW, "--db", db(tmp_path), "--flush-interval", "0.1"]
    proc = start_sheetbatch(args, cwd=tmp_path, SHEETBATCH_TEST_PHASE_SECONDS="0.4")
    wait_for_rows(
        sheet, lambda rows: any(r.get("Status", "").startswith("processing") for r in rows)
    )
    lock = tmp_path / ".~lock.companies.csv#"  # the operator opened it in LibreOffice
    lock.write_text("operator,desk,4242;", encoding="utf-8")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "results written" not in stderr
    assert "the final statuses of 4 rows were not written to companies.csv:" in stderr
    assert "companies.csv is locked by another program" in stderr
    assert f"run `sheetbatch run {sheet}` again to write them" in stderr
    assert all(not r["Status"].startswith("completed") for r in read_csv(sheet))
    lock.unlink()
    again = sheetbatch(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "4 rows finished before, written from the store" in again.stderr
    assert [r["Status"] for r in read_csv(sheet)] == ["completed"] * 4
