"""The streamed CSV write (`csv_stream`): the same bytes as the parsed document would write,
every other record of a big file byte for byte as it was, and a save by another program
during the stream kept."""

from __future__ import annotations

import codecs
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import pytest

from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.csv_stream import StreamedUpdate
from sheets_integration.file_sheet import FileSheet
from sheets_integration.sheet import CellValue, WriteResult
from sheets_integration.stream_rewrite import stream_rewrite

HEADER = "URL,Name,Job ID,Status,Score"

FILES = {
    "plain": f"{HEADER}\r\nhttps://a,Alpha,j1,,\r\nhttps://b,Beta,j2,queued,\r\n",
    "bom_semicolon_lf": "\ufeffURL;Name;Job ID;Status;Score\nhttps://a;Alpha;j1;;\nx;y;j2;;\n",
    "sep_line": "sep=;\r\nURL;Name;Job ID;Status;Score\r\nhttps://a;Alpha;j1;;\r\n",
    "quote_all": '"URL","Name","Job ID","Status","Score"\r\n"https://a","Al, pha","j1","",""\r\n'
    '"b","Beta","j2","",""\r\n',
    "short_rows": f"{HEADER}\r\nhttps://a,Alpha,j1\r\nhttps://b,Beta,j2,,\r\n",
    "multiline": f'{HEADER}\r\n"https://a","Al\r\npha",j1,,\r\nb,Beta,j2,,\r\n',
    "no_final_newline": f"{HEADER}\r\nhttps://a,Alpha,j1,,\r\nb,Beta,j2,,",
    "operator_values": f"{HEADER}\r\nhttps://a,Alpha,j1,,95 (by hand)\r\nb,Beta,j2,,\r\n",
    "duplicate_id": f"{HEADER}\r\nhttps://a,Alpha,j1,,\r\ncopy,Alpha copy,j1,,\r\n",
}

UPDATES: Mapping[str, Mapping[str, CellValue]] = {
    "j1": {"Status": "completed", "Score": 80, "Name": '=HYPERLINK("evil")'},
    "j2": {"Status": "failed: fetch: connection refused", "Score": "+1 555 0100"},
    "gone": {"Status": "completed"},
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_stream_writes_what_the_parsed_document_writes(tmp_path: Path, name: str) -> None:
    streamed = tmp_path / "streamed.csv"
    streamed.write_bytes(FILES[name].encode("utf-8"))
    parsed = tmp_path / "parsed.csv"
    shutil.copyfile(streamed, parsed)
    kwargs = {"fill_only": ["Score"]}
    got = CsvSheet(streamed).write_by_job_id(UPDATES, **kwargs)
    want = FileSheet.write_by_job_id(CsvSheet(parsed), UPDATES, **kwargs)
    assert got == want
    assert "gone" in got.missing and got.cells > 0
    assert streamed.read_bytes() == parsed.read_bytes()
    assert streamed.read_bytes().startswith(codecs.BOM_UTF8) == (name == "bom_semicolon_lf")


def test_only_the_records_written_change_in_a_big_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    lines = [HEADER.encode()] + [
        f'https://c{i}.example,"Company {i}, Ltd",job-{i},queued,'.encode() for i in range(30_000)
    ]
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    written = {7, 15_000, 29_999}
    result = CsvSheet(path).write_by_job_id({f"job-{i}": {"Status": "completed"} for i in written})
    assert result == WriteResult(cells=3)
    after = path.read_bytes().split(b"\r\n")
    changed = [i for i, (a, b) in enumerate(zip(lines, after, strict=False)) if a != b]
    assert changed == [i + 1 for i in sorted(written)]
    assert after[15_001] == b'https://c15000.example,"Company 15000, Ltd",job-15000,completed,'
    assert len(after) == len(lines) + 1  # and the final line end


def test_a_save_by_another_program_during_the_stream_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(f"{HEADER}\r\nhttps://a,Alpha,j1,,\r\nhttps://b,Beta,j2,,\r\n".encode())
    update = StreamedUpdate({"j2": {"Status": "completed"}}, job_column="Job ID")
    saves = []

    def edit(source: BinaryIO, target: BinaryIO) -> tuple[bool, WriteResult]:
        outcome = update(source, target)
        if not saves:  # the operator saves while our new version is being written
            saves.append(1)
            path.write_bytes(
                f"{HEADER}\r\nhttps://new,New row,,,\r\nhttps://a,Alpha (edited),j1,,\r\n"
                "https://b,Beta,j2,,\r\n".encode()
            )
        return outcome

    assert stream_rewrite(path, "c.csv", edit) == WriteResult(cells=1)
    assert path.read_text(encoding="utf-8").splitlines() == [
        HEADER,
        "https://new,New row,,,",
        "https://a,Alpha (edited),j1,,",
        "https://b,Beta,j2,completed,",
    ]
    assert not list(tmp_path.glob(".c.csv.*"))  # no temporary file left behind


def test_a_column_to_append_takes_the_parsed_path(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"URL,Job ID\r\nhttps://a,j1\r\n")
    assert CsvSheet(path).write_by_job_id({"j1": {"Status": "completed"}}) == WriteResult(cells=1)
    assert path.read_bytes() == b"URL,Job ID,Status\r\nhttps://a,j1,completed\r\n"


ASSIGN_FILE = (
    f"{HEADER}\r\nhttps://a,Alpha,,,\r\nhttps://b,Beta,,,\r\nhttps://c,Gamma,,,\r\n"
    "https://d,Delta,j9,,\r\nhttps://e,Epsilon,old,,\r\nhttps://f,Zeta,taken,,\r\n"
)


def assign_both(
    tmp_path: Path,
    content: str,
    assignments: Mapping[int, str],
    expected: Mapping[int, Mapping[str, str]],
) -> set[int]:
    """Assign through the stream and through the parsed document; both must agree."""
    streamed = tmp_path / "streamed.csv"
    streamed.write_bytes(content.encode("utf-8"))
    parsed = tmp_path / "parsed.csv"
    shutil.copyfile(streamed, parsed)
    got = CsvSheet(streamed).assign_job_ids(assignments, expected)
    want = FileSheet.assign_job_ids(CsvSheet(parsed), assignments, expected)
    assert got == want
    assert streamed.read_bytes() == parsed.read_bytes()
    return got


def test_the_stream_refuses_the_rows_the_parsed_document_refuses(tmp_path: Path) -> None:
    refused = assign_both(
        tmp_path,
        ASSIGN_FILE,
        {0: "n0", 1: "n1", 2: "j9", 3: "j9x", 4: "n4", 5: "n5", 9: "n9"},
        {
            0: {"URL": "https://a", "Job ID": ""},
            1: {"URL": "https://moved"},  # the row changed since it was read
            4: {"URL": "https://e", "Job ID": "old"},  # the caller read "old": replaced
        },
    )
    # 2: j9 sits on another row; 3 and 5: hold another id; 9: no such row.
    assert refused == {1, 2, 3, 5, 9}
    rows = (tmp_path / "streamed.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1] == "https://a,Alpha,n0,," and rows[5] == "https://e,Epsilon,n4,,"


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_stream_assigns_what_the_parsed_document_assigns(tmp_path: Path, name: str) -> None:
    assign_both(tmp_path, FILES[name], {0: "x0", 1: "x1"}, {0: {"Job ID": "j1"}, 1: {}})
