"""`sheetbatch run` on a Google Sheet: the real CLI, gspread, and the Sheets stand-in."""

from __future__ import annotations

import json
from pathlib import Path

from gsheets_standin import StandIn
from gsheets_standin._auth import ServiceAccountKey
from tests.support.cli import sheetbatch
from tests.support.google import *  # noqa: F403  (the stand-in's pytest fixtures)


def test_run_on_a_google_sheet_by_url_writes_statuses_and_results_as_text(
    tmp_path: Path, standin: StandIn, service_account_key: ServiceAccountKey, key_file: Path
) -> None:
    rows = [["Company", "Website", "Zip"], ["Acme", "acme.test", "00123"], ["Beta", "b.test", "7"]]
    key = standin.create_spreadsheet({"Leads": rows}, shared_with=[service_account_key.email])
    url = f"https://docs.google.com/spreadsheets/d/{key}/edit#gid=0"
    out = sheetbatch(
        [
            "run",
            url,
            "--pipeline",
            "tests.support.pipelines:formula",
            "--credentials",
            str(key_file),
            "--db",
            f"sqlite:///{tmp_path / 'p.db'}",
            "--json",
        ],
        cwd=tmp_path,
        SHEETBATCH_SHEETS_API_URL=standin.url,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["succeeded"] == 2
    header, *values = standin.values(key)
    table = [dict(zip(header, r + [""] * (len(header) - len(r)), strict=True)) for r in values]
    assert [r["Status"] for r in table] == ["completed", "completed"]
    assert [r["Zip"] for r in table] == ["00123", "7"]
    assert table[0]["Name"] == '=HYPERLINK("http://evil.test","click")'  # RAW: text, not formula
    with standin.edit(key) as book:
        name_col = header.index("Name")
        assert isinstance(book.sheet().get(1, name_col), str)


def test_a_sheet_not_shared_with_the_service_account_says_what_to_do(
    tmp_path: Path, standin: StandIn, service_account_key: ServiceAccountKey, key_file: Path
) -> None:
    key = standin.create_spreadsheet({"Sheet1": [["Company", "Website"]]}, shared_with=[])
    out = sheetbatch(
        ["run", key, "--credentials", str(key_file), "--db", f"sqlite:///{tmp_path / 'p.db'}"],
        cwd=tmp_path,
        SHEETBATCH_SHEETS_API_URL=standin.url,
    )
    assert out.returncode == 2
    assert service_account_key.email in out.stderr and "share" in out.stderr
