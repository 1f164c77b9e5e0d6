"""Bad input is one clear line and exit 2, never a traceback, and a mistyped store never
silently becomes a new, empty one. Real `sheetbatch` subprocesses."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.support.cli import read_csv, sheetbatch, write_csv


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def files(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "c.csv", ["Company", "Website"], [["Acme", "https://acme.test"]])


def test_an_xlsx_zip_without_a_workbook_part_is_a_clear_error(tmp_path: Path) -> None:
    # A zip package with content types (a Word document, say) but no workbook part.
    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>',
        )
        archive.writestr("word/document.xml", "<document/>")
    before = path.read_bytes()
    out = sheetbatch(["run", str(path), "--db", f"sqlite:///{tmp_path / 'p.db'}"], cwd=tmp_path)
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    assert line.startswith("error: broken.xlsx: not a") and "workbook" in line
    assert "save it again" in line
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("garbage", "--db: 'garbage' is not a store URL; use sqlite:///"),
        ("sqlite:////dev/null/x.db", "--db: /dev/null is not a directory"),
        ("sqlite:///{tmp}/nonexistent/dir/x.db", "nonexistent/dir does not exist; create it"),
        ("sqlite:///{tmp}", "is a directory"),
        ("mysql://u@h/db", "'mysql://u@h/db' is not a store URL"),
    ],
)
def test_a_store_url_that_cannot_be_right_is_refused_and_nothing_is_created(
    tmp_path: Path, sheet: Path, url: str, message: str
) -> None:
    before = files(tmp_path)
    out = sheetbatch(["run", str(sheet), "--db", url.format(tmp=tmp_path)], cwd=tmp_path)
    assert out.returncode == 2
    assert message in one_error_line(out.stderr)
    assert files(tmp_path) == before  # no ./garbage, no new directory, the sheet untouched
    assert read_csv(sheet) == [{"Company": "Acme", "Website": "https://acme.test"}]


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(
    tmp_path: Path, sheet: Path
) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database\n" * 100, encoding="utf-8")
    before = notes.read_bytes()
    for command in (["run", str(sheet)], ["status"], ["events", "b-x"]):
        out = sheetbatch([*command, "--db", f"sqlite:///{notes}"], cwd=tmp_path)
        assert out.returncode == 2
        line = one_error_line(out.stderr)
        assert "notes.db: file is not a database" in line and "point --db at" in line
    assert notes.read_bytes() == before
    assert read_csv(sheet) == [{"Company": "Acme", "Website": "https://acme.test"}]


def test_status_events_and_cancel_without_a_store_say_so_and_create_none(tmp_path: Path) -> None:
    for command in (["status"], ["status", "b-123"], ["events", "b-123"], ["cancel", "b-123"]):
        out = sheetbatch(command, cwd=tmp_path)
        assert out.returncode == 2
        line = one_error_line(out.stderr)
        assert "no progress store at .sheetbatch/progress.db" in line, line
        explicit = sheetbatch([*command, "--db", f"sqlite:///{tmp_path / 'x.db'}"], cwd=tmp_path)
        assert "no progress store at" in one_error_line(explicit.stderr)
    assert files(tmp_path) == set()


def test_the_default_store_directory_is_made(tmp_path: Path, sheet: Path) -> None:
    out = sheetbatch(["run", str(sheet), "--pipeline", "noop"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / ".sheetbatch" / "progress.db").is_file()
    listing = sheetbatch(["status"], cwd=tmp_path)
    assert listing.returncode == 0 and "completed" in listing.stdout


@pytest.mark.parametrize("entry", ["not a host!", "host:99999", "a..b", "10.0.0.0/99"])
def test_a_malformed_allow_host_exits_2(tmp_path: Path, sheet: Path, entry: str) -> None:
    out = sheetbatch(
        ["run", str(sheet), "--db", f"sqlite:///{tmp_path / 'p.db'}", "--allow-host", entry],
        cwd=tmp_path,
    )
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    assert line.startswith("error: --allow-host: ") and repr(entry) in line


def test_encoding_names_a_real_option_that_reads_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("Company,Website\nCafé Müller,https://cafe.test\n".encode("cp1252"))
    db = ["--db", f"sqlite:///{tmp_path / 'p.db'}", "--pipeline", "noop"]
    out = sheetbatch(["run", str(path), *db], cwd=tmp_path)
    assert out.returncode == 2
    assert "--encoding cp1252" in one_error_line(out.stderr)
    out = sheetbatch(["run", str(path), *db, "--encoding", "cp1252"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = path.read_bytes().decode("cp1252")  # written back in the file's own encoding
    assert "Café Müller" in text and "completed" in text
    with_xlsx = sheetbatch(["run", "x.xlsx", *db, "--encoding", "cp1252"], cwd=tmp_path)
    assert with_xlsx.returncode == 2
    assert "--encoding applies to CSV files only" in one_error_line(with_xlsx.stderr)


def test_unknown_ids_are_one_line_with_the_clis_hint_and_exit_2(tmp_path: Path) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'p.db'}"]
    assert sheetbatch(["schedule", "list", *db], cwd=tmp_path).returncode == 0  # a store now
    shown = sheetbatch(["schedule", "show", "s-nope", *db], cwd=tmp_path)
    assert shown.returncode == 2
    line = one_error_line(shown.stderr)
    assert line == "error: unknown schedule 's-nope'; see `sheetbatch schedule list`"
    cancelled = sheetbatch(["cancel", "b-nope", *db], cwd=tmp_path)
    assert cancelled.returncode == 2 and "b-nope" in one_error_line(cancelled.stderr)
