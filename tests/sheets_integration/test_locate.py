"""open_sheet: which backend a spec opens, and the errors for specs it cannot open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from sheets_integration import locate
from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.errors import BadSheet, SheetError, SheetNotFound
from sheets_integration.locate import (
    is_google_spec,
    open_sheet,
    register_backend,
    split_xlsx_spec,
)
from sheets_integration.sheet import Sheet, Table, WriteResult
from sheets_integration.xlsx_sheet import XlsxSheet

GOOGLE_KEY = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"


@pytest.fixture
def xlsx(tmp_path: Path) -> Path:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.title = "Companies"
    first.append(["URL"])
    second = workbook.create_sheet("Other #2")
    second.append(["Name"])
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    return path


@pytest.fixture
def restore_backends() -> Iterator[None]:
    saved = locate.backends()
    yield
    locate._backends[:] = saved


def test_csv_paths_open_a_csv_sheet(tmp_path: Path) -> None:
    path = tmp_path / "Companies.CSV"
    path.write_text("URL\nx\n", encoding="cp1252")
    sheet = open_sheet(str(path), encoding="cp1252")
    assert isinstance(sheet, CsvSheet)
    assert sheet.encoding == "cp1252"
    assert sheet.read().rows == [["x"]]


def test_xlsx_paths_open_an_xlsx_sheet_with_an_optional_worksheet(xlsx: Path) -> None:
    sheet = open_sheet(str(xlsx))
    assert isinstance(sheet, XlsxSheet)
    assert sheet.read().header == ["URL"]
    named = open_sheet(f"{xlsx}#Other #2")
    assert isinstance(named, XlsxSheet)
    assert named.name == "book.xlsx#Other #2"
    assert named.read().header == ["Name"]
    assert open_sheet(str(xlsx), worksheet="Other #2").read().header == ["Name"]
    assert open_sheet(f"{xlsx}#").read().header == ["URL"]


def test_conflicting_worksheet_names_are_refused(xlsx: Path) -> None:
    with pytest.raises(SheetError, match="name it once"):
        open_sheet(f"{xlsx}#Companies", worksheet="Other #2")


def test_split_xlsx_spec() -> None:
    assert split_xlsx_spec("a.xlsx") == (Path("a.xlsx"), None)
    assert split_xlsx_spec("dir/a.XLSX#Sheet 1") == (Path("dir/a.XLSX"), "Sheet 1")
    assert split_xlsx_spec(r"C:\data\a.xlsx#S:1") == (Path(r"C:\data\a.xlsx"), "S:1")
    assert split_xlsx_spec("a.csv") is None
    assert split_xlsx_spec("a.xlsx.bak") is None


def test_missing_files_name_the_path(tmp_path: Path) -> None:
    for name in ("nope.csv", "nope.xlsx#Sheet1"):
        with pytest.raises(SheetNotFound, match="nope"):
            open_sheet(str(tmp_path / name))
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(BadSheet, match="not a regular file"):
        open_sheet(str(tmp_path / "dir.csv"))


@pytest.mark.parametrize(
    "spec",
    [
        f"https://docs.google.com/spreadsheets/d/{GOOGLE_KEY}/edit#gid=0",
        GOOGLE_KEY,
    ],
)
def test_google_specs_go_to_the_google_backend_which_asks_for_a_credential(
    spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    assert is_google_spec(spec)
    assert locate.backend_name(spec) == "google"
    with pytest.raises(SheetError, match="--credentials FILE"):
        open_sheet(spec)


def test_unknown_and_unsupported_specs(tmp_path: Path) -> None:
    assert not is_google_spec("companies")
    with pytest.raises(SheetError, match=r"give a \.csv or \.xlsx path"):
        open_sheet("companies")
    with pytest.raises(SheetError, match=r"save it as \.xlsx or \.csv"):
        open_sheet(str(tmp_path / "old.xls"))


class FakeGoogleSheet:
    """A stand-in registered the way the Google backend will be."""

    def __init__(self, spec: str, **options: Any) -> None:
        self.spec = spec
        self.options = options

    @property
    def name(self) -> str:
        return self.spec

    def read(self) -> Table:
        return Table(header=["URL"])

    def read_values(self) -> Table:
        return self.read()

    def ensure_columns(self, columns: Any) -> Table:
        return self.read()

    def assign_job_ids(self, assignments: Any, expected: Any) -> set[int]:
        return set()

    def write_by_job_id(self, updates: Any) -> WriteResult:
        return WriteResult()

    def close(self) -> None:
        pass


def test_registering_a_backend_takes_over_its_specs(restore_backends: None) -> None:
    register_backend("google", is_google_spec, FakeGoogleSheet)
    sheet = open_sheet(GOOGLE_KEY, worksheet="Sheet1")
    assert isinstance(sheet, FakeGoogleSheet)
    assert isinstance(sheet, Sheet)
    assert sheet.options == {"worksheet": "Sheet1"}
    assert [backend.name for backend in locate.backends()] == ["google", "xlsx", "csv"]
