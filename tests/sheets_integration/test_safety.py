"""Formula escaping, write planning and the atomic, change-aware file rewrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from sheets_integration.errors import MissingColumn, SheetLocked, SheetWriteError
from sheets_integration.safety import (
    MAX_CELL_CHARS,
    CellWrite,
    atomic_write,
    clip,
    escape_csv,
    is_formula_like,
    office_lock_file,
    path_lock,
    plan_columns,
    plan_job_ids,
    plan_updates,
    rewrite_file,
    used_width,
)
from sheets_integration.sheet import Table


@pytest.mark.parametrize(
    "text",
    ["=1+1", '=HYPERLINK("http://x","y")', "+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "\n=1",
     "\0", "＝1+1", "+1 555 0100", "-", "+", "-1-1"],
)  # fmt: skip
def test_formula_like_text_is_prefixed(text: str) -> None:
    assert is_formula_like(text)
    assert escape_csv(text) == "'" + text


@pytest.mark.parametrize(
    "text",
    ["", "failed: resolve: connection refused", "-12", "+3.5", "-1e5", ".5", "-.5", "00123",
     "a=b", " =1", "'=already quoted", "https://x.example/?a=-1"],
)  # fmt: skip
def test_ordinary_text_and_plain_numbers_are_left_alone(text: str) -> None:
    assert not is_formula_like(text)
    assert escape_csv(text) == text


def test_clip_keeps_cells_within_the_excel_limit() -> None:
    assert clip("short") == "short"
    clipped = clip("x" * (MAX_CELL_CHARS + 1))
    assert len(clipped) == MAX_CELL_CHARS
    assert clipped.endswith("…")
    assert len(escape_csv("=" * (MAX_CELL_CHARS * 2))) == MAX_CELL_CHARS + 1


def table(header: list[str], *rows: list[str]) -> Table:
    return Table(header=header, rows=list(rows))


def test_new_columns_go_after_the_used_area() -> None:
    t = table(["URL", "", "Name", ""], ["a", "", "", "", ""], ["b", "", "", "", "unlabelled"])
    assert used_width(t) == 5
    assert plan_columns(t, ["name", "Status", " status ", "Job ID"]) == [
        CellWrite(-1, 5, "Status"),
        CellWrite(-1, 6, "Job ID"),
    ]
    with pytest.raises(ValueError, match="blank"):
        plan_columns(t, [" "])


def test_plan_updates_locates_rows_by_job_id_now() -> None:
    t = table(["URL", "Job ID", "status"], ["a", "j2"], ["b", ""], ["c", " j1 "], ["d", "j1"])
    plan = plan_updates(t, {"j1": {"Status": "ok", "Score": "5"}, "j9": {"Status": "x"}}, "s")
    assert plan.missing == frozenset({"j9"})
    assert plan.header_cells == [CellWrite(-1, 3, "Score")]
    # The first row carrying the id wins, as in Table.job_rows.
    assert plan.cells[1:] == [CellWrite(2, 2, "ok", "j1"), CellWrite(2, 3, "5", "j1")]


def test_plan_updates_fill_only_keeps_other_values_and_follows_the_job_column() -> None:
    t = table(
        ["Run ID", "Status", "Score", "Name"],
        ["j1", "processing", "", "Edited by hand"],
        ["j2", "", "7", "Acme"],
    )
    updates = {
        "j1": {"Status": "completed", "Score": 100, "Name": "Acme"},
        "j2": {"Status": "completed", "Score": 7, "Name": "Acme"},
    }
    plan = plan_updates(t, updates, "s", job_column="Run ID", fill_only=["score", "NAME"])
    # Status is always written; Score/Name only where empty or already equal (7 == "7").
    assert plan.cells == [
        CellWrite(0, 1, "completed", "j1"),
        CellWrite(0, 2, 100, "j1"),
        CellWrite(1, 1, "completed", "j2"),
        CellWrite(1, 2, 7, "j2"),
        CellWrite(1, 3, "Acme", "j2"),
    ]
    assert plan.kept == 1
    assert plan.cells[1].text == "100"
    with pytest.raises(MissingColumn, match="'Job ID' not found"):
        plan_updates(t, updates, "s")


def test_plan_updates_adds_no_column_when_every_job_is_missing() -> None:
    plan = plan_updates(table(["Job ID"], ["j1"]), {"j2": {"Status": "x"}}, "s")
    assert plan.cells == []
    assert plan.missing == frozenset({"j2"})


def test_plan_updates_needs_a_job_id_column_and_never_rewrites_it() -> None:
    with pytest.raises(MissingColumn, match="'Job ID' not found in s"):
        plan_updates(table(["URL"], ["a"]), {"j1": {"Status": "x"}}, "s")
    with pytest.raises(ValueError, match="must not change the Job ID"):
        plan_updates(table(["Job ID"], ["j1"]), {"j1": {"job id": "j2"}}, "s")
    assert plan_updates(table(["URL"]), {}, "s").cells == []


def test_plan_job_ids_refuses_rows_that_are_not_what_the_caller_read() -> None:
    t = table(["URL", "Job ID"], ["a"], ["b", "taken"], ["c"], ["d", "j4"], ["e"])
    plan = plan_job_ids(
        t,
        {0: "j0", 1: "j1", 2: "j2", 3: "j4", 4: "j5", 9: "j9", 5: "taken"},
        {0: {"URL": "a"}, 2: {"url": "moved"}, 4: {"URL": "e", "Gone": ""}},
    )
    # 1: holds another id; 2: content changed; 9: no such row; 5: no such row either
    # ("taken" also sits on row 1). 3 already carries j4: neither written nor refused.
    assert plan.refused == frozenset({1, 2, 9, 5})
    assert plan.cells == [CellWrite(0, 1, "j0"), CellWrite(4, 1, "j5")]


def test_plan_job_ids_adds_the_column_when_needed() -> None:
    plan = plan_job_ids(table(["URL", "Notes"], ["a", "n"]), {0: "j0"}, {0: {"URL": "a"}})
    assert plan.cells == [CellWrite(-1, 2, "Job ID"), CellWrite(0, 2, "j0")]


@pytest.mark.parametrize("bad", ["", " j1", "=j1", "-x"])
def test_plan_job_ids_rejects_unusable_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="not a usable job id"):
        plan_job_ids(table(["Job ID"], [""]), {0: bad}, {})


def test_plan_job_ids_rejects_one_id_for_two_rows() -> None:
    with pytest.raises(ValueError, match="two rows"):
        plan_job_ids(table(["Job ID"], [""], [""]), {0: "j", 1: "j"}, {})


def test_rewrite_redoes_the_edit_when_the_file_changes_underneath(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"operator v1\n")
    seen: list[bytes] = []

    def edit(data: bytes) -> tuple[bytes | None, int]:
        seen.append(data)
        if len(seen) == 1:  # another program saves while we are busy
            path.write_bytes(b"operator v2, longer\n")
        return data + b"ours\n", len(seen)

    assert rewrite_file(path, "f.txt", edit) == 2
    assert seen == [b"operator v1\n", b"operator v2, longer\n"]
    assert path.read_bytes() == b"operator v2, longer\nours\n"


def test_rewrite_gives_up_when_the_file_never_settles(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x")

    def edit(data: bytes) -> tuple[bytes | None, None]:
        path.write_bytes(data + b"x")
        return b"ours", None

    with pytest.raises(SheetWriteError, match="kept changing"):
        rewrite_file(path, "f.txt", edit, attempts=2)
    assert path.read_bytes() == b"xxx"  # the other program's content, not ours


def test_rewrite_without_changes_does_not_touch_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x")
    inode = path.stat().st_ino
    assert rewrite_file(path, "f.txt", lambda data: (None, "nothing")) == "nothing"
    assert path.stat().st_ino == inode


def test_rewrite_refuses_files_open_in_an_office_program(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"x")
    assert office_lock_file(path) is None
    owner = tmp_path / "~$book.xlsx"
    owner.write_bytes(b"")
    assert office_lock_file(path) == owner
    with pytest.raises(SheetLocked, match=r"~\$book\.xlsx"):
        rewrite_file(path, "book.xlsx", lambda data: (b"y", None))
    assert path.read_bytes() == b"x"
    rewrite_file(path, "book.xlsx", lambda data: (b"y", None), respect_lock_files=False)
    assert path.read_bytes() == b"y"


def test_atomic_write_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(SheetWriteError, match="could not write gone"):
        atomic_write(tmp_path / "missing-dir" / "f.csv", b"x", 0o644, "gone")
    assert list(tmp_path.iterdir()) == []


def test_path_lock_is_shared_by_every_spelling_of_a_path(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"")
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    assert path_lock(path) is path_lock(link) is path_lock(tmp_path / "." / "f.csv")
    assert path_lock(path) is not path_lock(tmp_path / "other.csv")
