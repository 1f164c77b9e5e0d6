"""GoogleSheet through gspread against the stand-in: reads, columns, job ids and writes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gsheets_standin import Formula, RichText, ServiceAccountKey, Spreadsheet, StandIn
from sheets_integration.errors import MissingColumn
from sheets_integration.google_sheet import GoogleSheet
from sheets_integration.sheet import Sheet, Table, WriteResult
from tests.support.google import *  # noqa: F403

MakeSheet = Callable[..., GoogleSheet]

ROWS = [
    ["Company", "Website", "Zip"],
    ["Acme", "acme.example", "00123"],
    ["Beta", "beta.example", "00456"],
    ["Gamma", "gamma.example", "00789"],
]
BOOKKEEPING = ["Status", "Job ID", "Updated", "Error"]


def _prepared(google_sheet: MakeSheet, rows: list[list[str]] = ROWS) -> GoogleSheet:
    sheet = google_sheet(rows)
    sheet.ensure_columns(BOOKKEEPING)
    table = sheet.read()
    ids = {i: f"job-{table.cell(i, 'Company').lower()}" for i in range(len(table.rows))}
    assert (
        sheet.assign_job_ids(ids, {i: {"Company": table.cell(i, "Company")} for i in ids}) == set()
    )
    return sheet


def _values(standin: StandIn, sheet: GoogleSheet) -> list[list[str]]:
    return standin.values(sheet.key, sheet.worksheet_title())


def test_is_a_sheet(google_sheet: MakeSheet) -> None:
    sheet = google_sheet(ROWS)
    assert isinstance(sheet, Sheet)
    assert sheet.name.endswith("/Sheet1")


def test_read_returns_the_text_the_user_sees(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = google_sheet([["Name", "Zip", "Formula"], ["Acme", "00123", "=1+1"], [], ["Beta"]])
    standin.clear_log()
    table = sheet.read()
    assert table == Table(["Name", "Zip", "Formula"], [["Acme", "00123", "=1+1"], [], ["Beta"]])
    routes = [r.route for r in standin.log if r.kind != "token"]
    # The worksheet is chosen once, then read by its sheetId: values, and the grid's links,
    # merges and tags.
    assert routes == [
        "spreadsheets.get",
        "spreadsheets.getByDataFilter",
        "values.batchGetByDataFilter",
    ]
    sheet.read()
    assert standin.count(route="spreadsheets.get") == 1  # the worksheet chosen once for the run


def test_an_empty_worksheet_reads_as_an_empty_table(google_sheet: MakeSheet) -> None:
    assert google_sheet([]).read() == Table([], [])


def test_ensure_columns_adds_missing_columns_in_one_request(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet(ROWS)
    sheet.read()
    standin.clear_log()
    table = sheet.ensure_columns(["zip", "Status", "Job ID"])
    assert table.header == ["Company", "Website", "Zip", "Status", "Job ID"]
    # On the read just made: one atomic write (tag Zip; insert, tag and head Status, Job ID).
    assert [(r.route, r.kind) for r in standin.log] == [("spreadsheets.batchUpdate", "write")]
    assert _values(standin, sheet)[0] == table.header
    standin.clear_log()
    assert sheet.ensure_columns(["Status"]).header == table.header
    assert standin.count(kind="write") == 0


def test_ensure_columns_widens_a_full_grid(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = google_sheet(ROWS)
    with standin.edit(sheet.key) as book:
        book.sheet().resize(cols=3)
    table = sheet.ensure_columns(BOOKKEEPING)
    assert table.header == ROWS[0] + BOOKKEEPING
    with standin.edit(sheet.key) as book:
        assert book.sheet().column_count == 7
    assert _values(standin, sheet)[0] == ROWS[0] + BOOKKEEPING


def test_assign_job_ids_checks_rows_against_a_fresh_read(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet(ROWS)
    table = sheet.ensure_columns(BOOKKEEPING)
    expected = {i: {"Company": table.cell(i, "Company")} for i in range(3)}
    with standin.edit(sheet.key) as book:
        book.sheet().sort_by(0, descending=True)  # Gamma, Beta, Acme
    refused = sheet.assign_job_ids({0: "j-acme", 1: "j-beta", 2: "j-gamma"}, expected)
    assert refused == {0, 2}
    fresh = sheet.read()
    assert fresh.job_rows() == {"j-beta": 1}


def test_write_by_job_id_is_one_read_and_one_write(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)
    standin.clear_log()
    result = sheet.write_by_job_id(
        {
            "job-acme": {"Status": "completed", "Error": ""},
            "job-gamma": {"Status": "failed: boom", "Error": "boom"},
            "job-gone": {"Status": "completed"},
        }
    )
    assert result == WriteResult(cells=4, missing=frozenset({"job-gone"}))
    assert [(r.route, r.kind) for r in standin.log] == [
        ("values.batchGetByDataFilter", "read"),
        ("values.batchUpdateByDataFilter", "write"),
    ]
    rows = _values(standin, sheet)
    assert rows[1][3:5] == ["completed", "job-acme"]
    assert rows[3][3:] == ["failed: boom", "job-gamma", "", "boom"]
    assert rows[2][3:5] == ["", "job-beta"]


def test_values_are_written_as_literal_text(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = _prepared(google_sheet)
    sheet.write_by_job_id({"job-beta": {"Error": '=HYPERLINK("http://evil")', "Updated": "007"}})
    with standin.edit(sheet.key) as book:
        ws = book.sheet()
        assert ws.get(2, 6) == '=HYPERLINK("http://evil")'  # a str, not a Formula
        assert ws.get(2, 5) == "007"
    assert sheet.read().cell(1, "Error") == '=HYPERLINK("http://evil")'


def test_writes_land_on_the_right_rows_after_the_operator_edits(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)

    def operator(book: Spreadsheet) -> None:
        ws = book.sheet()
        ws.sort_by(0, descending=True)  # Gamma, Beta, Acme
        ws.insert_rows(1, 2)  # two blank rows on top of the data
        ws.delete_rows(4)  # Beta's row (now row 5) is gone

    standin.between_read_and_write(operator)
    result = sheet.write_by_job_id(
        {j: {"Status": f"done {j}"} for j in ("job-acme", "job-beta", "job-gamma")}
    )
    assert result == WriteResult(cells=2, missing=frozenset({"job-beta"}))
    assert _values(standin, sheet) == [
        ["Company", "Website", "Zip", *BOOKKEEPING],
        [],
        [],
        ["Gamma", "gamma.example", "00789", "done job-gamma", "job-gamma"],
        ["Acme", "acme.example", "00123", "done job-acme", "job-acme"],
    ]
    # The write hit moved rows: the answer showed it, the two cells written on the blank
    # rows were put back (they were empty: known), and Acme was written again after a
    # fresh read. Gamma's row was still Gamma's: its status stood.
    assert [r.route for r in standin.log if r.kind != "token"][-5:] == [
        "values.batchGetByDataFilter",
        "values.batchUpdateByDataFilter",
        "values.batchUpdateByDataFilter",
        "values.batchGetByDataFilter",
        "values.batchUpdateByDataFilter",
    ]


def test_job_ids_never_stay_on_rows_that_moved_mid_write(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet(ROWS)
    sheet.ensure_columns(BOOKKEEPING)
    table = sheet.read()
    expected = {i: {"Company": table.cell(i, "Company")} for i in range(3)}
    standin.between_read_and_write(lambda book: book.sheet().sort_by(0, descending=True))
    refused = sheet.assign_job_ids({0: "j-acme", 1: "j-beta", 2: "j-gamma"}, expected)
    assert refused == {0, 2}  # Beta kept its place; Acme and Gamma swapped
    assert sheet.read().job_rows() == {"j-beta": 1}


def test_a_moved_job_id_column_is_found_again(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = _prepared(google_sheet)
    with standin.edit(sheet.key) as book:
        book.sheet().insert_columns(0)
    standin.clear_log()
    sheet.write_by_job_id({"job-beta": {"Status": "moved"}})
    assert standin.count(kind="read") == 1  # the tags moved with their columns
    assert _values(standin, sheet)[2][4:6] == ["moved", "job-beta"]


def test_a_deleted_output_column_is_added_again(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = _prepared(google_sheet)
    with standin.edit(sheet.key) as book:
        book.sheet().delete_columns(6)  # Error
    sheet.write_by_job_id({"job-acme": {"Error": "back"}})
    rows = _values(standin, sheet)
    assert rows[0][-1] == "Error" and rows[1][-1] == "back"


def test_no_job_id_column_is_a_clear_error(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = _prepared(google_sheet)
    with standin.edit(sheet.key) as book:
        book.sheet().delete_columns(4)
    with pytest.raises(MissingColumn, match="Job ID"):
        sheet.write_by_job_id({"job-acme": {"Status": "x"}})


def test_large_writes_are_split_under_the_payload_limit(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    rows = [["Company"]] + [[f"c{i}"] for i in range(40)]
    sheet = google_sheet(rows, max_payload_bytes=4_000)
    sheet.ensure_columns(BOOKKEEPING)
    sheet.assign_job_ids({i: f"j{i}" for i in range(40)}, {})
    tags = [r for r in standin.log if r.route == "spreadsheets.batchUpdate"][1:]
    assert len(tags) >= 2 and all(r.size <= 4_000 for r in tags)  # 40 row tags, split
    standin.clear_log()
    sheet.write_by_job_id({f"j{i}": {"Status": "x" * 200} for i in range(40)})
    writes = [r for r in standin.log if r.route == "values.batchUpdateByDataFilter"]
    assert len(writes) >= 3
    # The bytes that were sent: the limit, plus at most the nulls every column of a request
    # carries above its first row (Job ID, Status and a watched column here, 41 rows).
    assert all(r.size <= 4_000 + 3 * len("null,") * 41 for r in writes)
    assert all(row[1] == "x" * 200 for row in _values(standin, sheet)[1:])


def test_writes_far_down_a_big_sheet_are_not_sent_a_row_at_a_time(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    # Every column's values run from the header: the nulls above row 3,000 alone pass a
    # 10,000-byte limit, which must not make each row a request of its own.
    rows = [["Company"]] + [[f"c{i}"] for i in range(3_000)]
    sheet = google_sheet(rows, max_payload_bytes=10_000)
    sheet.ensure_columns(BOOKKEEPING)
    sheet.assign_job_ids({i: f"j{i}" for i in range(2_900, 3_000)}, {})
    standin.clear_log()
    sheet.write_by_job_id({f"j{i}": {"Status": "done"} for i in range(2_900, 3_000)})
    writes = [r for r in standin.log if r.route == "values.batchUpdateByDataFilter"]
    assert len(writes) == 1
    assert [row[1] for row in _values(standin, sheet)[2_901:]] == ["done"] * 100


def test_cells_are_clipped_to_the_cell_limit(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = _prepared(google_sheet)
    sheet.write_by_job_id({"job-acme": {"Error": "e" * 60_000}})
    error = sheet.read().cell(0, "Error")
    assert len(error) == 32_767 and error.endswith("…")


def test_named_worksheet_gid_and_url_specs(
    standin: StandIn, service_account_key: ServiceAccountKey, google_sheet_factory: MakeSheet
) -> None:
    key = standin.create_spreadsheet(
        {"First": [["a"]], "Second sheet": [["b"]]}, shared_with=[service_account_key.email]
    )
    with standin.edit(key) as book:
        gid = book.sheet("Second sheet").sheet_id
    assert google_sheet_factory(key).read().header == ["a"]
    assert google_sheet_factory(f"{key}/Second sheet").read().header == ["b"]
    url = f"https://docs.google.com/spreadsheets/d/{key}/edit#gid={gid}"
    by_url = google_sheet_factory(url)
    assert by_url.read().header == ["b"]
    assert by_url.name == f"{key}/Second sheet"


def test_numbers_land_as_numbers_and_text_as_text(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)
    sheet.write_by_job_id({"job-acme": {"Score": 87, "Ratio": 0.5, "Note": "=SUM(A1:A3)"}})
    with standin.edit(sheet.key) as book:
        ws = book.sheet()
        header = ws.formatted()[0]
        assert ws.get(1, header.index("Score")) == 87.0  # a number cell: SUM and sorting work
        assert ws.get(1, header.index("Ratio")) == 0.5
        assert ws.get(1, header.index("Note")) == "=SUM(A1:A3)"  # a str: never a formula
    table = sheet.read()
    assert (table.cell(0, "Score"), table.cell(0, "Ratio")) == ("87", "0.5")
    # Written again with the same value: nothing is sent.
    standin.clear_log()
    assert sheet.write_by_job_id({"job-acme": {"Score": 87.0}}).cells == 1
    assert standin.count(kind="write") == 0


def test_hyperlinked_cells_give_their_targets(google_sheet: MakeSheet) -> None:
    sheet = google_sheet(
        [
            ["Company", "Website"],
            ["Acme", Formula('=HYPERLINK("https://acme.example","Acme site")')],
            ["Beta", RichText.linked("Beta home", "https://beta.example")],
            ["Gamma", RichText("see gamma.example", ((0, None), (4, "https://gamma.example")))],
            ["Delta", "delta.example"],
            ["Eps", Formula("=1+1")],
        ]
    )
    table = sheet.read()
    assert table.rows[0] == ["Acme", "Acme site"]  # the label, as Google shows it
    assert table.links == {
        (0, 1): "https://acme.example",
        (1, 1): "https://beta.example",
        (2, 1): "https://gamma.example",
    }
    targets = [table.target(i, "Website") for i in range(5)]
    assert targets == [
        "https://acme.example",
        "https://beta.example",
        "https://gamma.example",
        "delta.example",
        "2",
    ]


def test_a_worksheet_title_is_matched_as_typed(
    standin: StandIn, service_account_key: ServiceAccountKey, google_sheet_factory: MakeSheet
) -> None:
    key = standin.create_spreadsheet(
        {"Leads": [["plain"]], "Leads ": [["trailing space"]]},
        shared_with=[service_account_key.email],
    )
    assert google_sheet_factory(f"{key}/Leads ").read().header == ["trailing space"]
    assert google_sheet_factory(f"{key}/Leads").read().header == ["plain"]
    assert google_sheet_factory(f"{key}/leads").read().header == ["plain"]  # case: loosely
