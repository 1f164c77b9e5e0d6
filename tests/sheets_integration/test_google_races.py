"""Issue 8 §6: whatever the operator does to the sheet, at the worst moment, no write of ours
lands in a cell that is not ours. Each edit runs inside the stand-in just before the
request it can hurt most (the write planned on a read), through gspread over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gsheets_standin import Box, ManualClock, Spreadsheet, StandIn
from sheets_integration.errors import MissingColumn, SheetNotFound
from sheets_integration.google_errors import SheetAccessDenied, SheetUnavailable
from sheets_integration.google_sheet import GoogleSheet
from sheets_integration.sheet import WriteResult
from tests.support.google import *  # noqa: F403

MakeSheet = Callable[..., GoogleSheet]
WRITE = "values.batchUpdateByDataFilter"
BOOKKEEPING = ["Status", "Job ID", "Updated", "Error"]
ROWS = [
    ["Company", "Website"],
    ["Acme", "acme.example"],
    ["Beta", "beta.example"],
    ["Gamma", "gamma.example"],
]
JOBS = ("job-acme", "job-beta", "job-gamma")


def _prepared(
    google_sheet: MakeSheet, rows: list[list[str]] = ROWS, **options: object
) -> GoogleSheet:
    sheet = google_sheet(rows, **options)
    sheet.ensure_columns(BOOKKEEPING)
    table = sheet.read()
    ids = {i: f"job-{table.cell(i, 'Company').lower()}" for i in range(len(table.rows))}
    assert (
        sheet.assign_job_ids(ids, {i: {"Company": table.cell(i, "Company")} for i in ids}) == set()
    )
    return sheet


def _table(standin: StandIn, sheet: GoogleSheet, title: str | None = None) -> list[dict[str, str]]:
    header, *rows = standin.values(sheet.key, title)
    return [dict(zip(header, row + [""] * (len(header) - len(row)), strict=False)) for row in rows]


def _by_company(standin: StandIn, sheet: GoogleSheet) -> dict[str, dict[str, str]]:
    return {row["Company"]: row for row in _table(standin, sheet)}


def _insert_column(at: int, title: str, values: list[str]) -> Callable[[Spreadsheet], None]:
    def operator(book: Spreadsheet) -> None:
        ws = book.sheet()
        ws.insert_columns(at)
        for row, value in enumerate([title, *values]):
            ws.set(row, at, value)

    return operator


def test_a_column_inserted_left_of_ours_during_a_flush_is_never_written(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)  # Company, Website, Status, Job ID, Updated, Error
    standin.before(_insert_column(2, "Priority", ["high", "low", "mid"]), route=WRITE)
    standin.clear_log()
    result = sheet.write_by_job_id({j: {"Status": "completed", "Updated": "now"} for j in JOBS})
    assert result == WriteResult(cells=6)
    rows = _by_company(standin, sheet)
    assert [rows[c]["Priority"] for c in ("Acme", "Beta", "Gamma")] == ["high", "low", "mid"]
    assert all(rows[c]["Status"] == "completed" and rows[c]["Updated"] == "now" for c in rows)
    assert [rows[c]["Job ID"] for c in ("Acme", "Beta", "Gamma")] == list(JOBS)
    assert standin.count(route=WRITE) == 1  # nothing to put back: no cell but ours was hit


def test_a_column_inserted_right_of_job_id_during_a_flush_is_never_written(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)
    standin.before(_insert_column(4, "Owner", ["ann", "bob", "cy"]), route=WRITE)
    sheet.write_by_job_id({j: {"Updated": "2024-05-01 10:00:00 UTC"} for j in JOBS})
    rows = _by_company(standin, sheet)
    assert [rows[c]["Owner"] for c in ("Acme", "Beta", "Gamma")] == ["ann", "bob", "cy"]
    assert {rows[c]["Updated"] for c in rows} == {"2024-05-01 10:00:00 UTC"}
    assert standin.values(sheet.key)[0] == [
        "Company",
        "Website",
        "Status",
        "Job ID",
        "Owner",
        "Updated",
        "Error",
    ]


def test_a_column_inserted_while_job_ids_are_assigned_never_gets_them(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet(ROWS)
    sheet.ensure_columns(BOOKKEEPING)
    table = sheet.read()
    standin.before(_insert_column(0, "Region", ["EU", "US", "APAC"]), route=WRITE)
    expected = {i: {"Company": table.cell(i, "Company")} for i in range(3)}
    refused = sheet.assign_job_ids(dict(enumerate(JOBS)), expected)
    assert refused == set()
    rows = _by_company(standin, sheet)
    assert [
        (rows[c]["Region"], rows[c]["Job ID"], rows[c]["Status"]) for c in ("Acme", "Beta", "Gamma")
    ] == [
        ("EU", "job-acme", ""),
        ("US", "job-beta", ""),
        ("APAC", "job-gamma", ""),
    ]
    assert sheet.read().job_rows() == {"job-acme": 0, "job-beta": 1, "job-gamma": 2}


def test_rows_sorted_while_job_ids_are_assigned_give_the_ids_back(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet(ROWS)
    sheet.ensure_columns(BOOKKEEPING)
    table = sheet.read()
    standin.before(lambda book: book.sheet().sort_by(0, descending=True), route=WRITE)
    expected = {i: {"Company": table.cell(i, "Company")} for i in range(3)}
    refused = sheet.assign_job_ids(dict(enumerate(JOBS)), expected)
    assert refused == {0, 2}  # Acme and Gamma swapped places; Beta stayed
    rows = _by_company(standin, sheet)
    assert {c: r["Job ID"] for c, r in rows.items()} == {
        "Acme": "",
        "Beta": "job-beta",
        "Gamma": "",
    }


def test_a_renamed_tab_whose_name_a_copy_took_keeps_its_values_and_headers(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet, title="Leads")

    def operator(book: Spreadsheet) -> None:
        original = book.sheet("Leads")
        original.title = "Leads (old)"
        book.duplicate(original, "Leads")

    standin.before(operator, kind="read")  # before the write's own read, even
    result = sheet.write_by_job_id({j: {"Status": "completed", "Score": 7} for j in JOBS})
    assert result == WriteResult(cells=6)
    original = _table(standin, sheet, "Leads (old)")
    copy = _table(standin, sheet, "Leads")
    assert [(r["Status"], r["Score"]) for r in original] == [("completed", "7")] * 3
    assert "Score" not in standin.values(sheet.key, "Leads")[0]  # the new header: original only
    assert {r["Status"] for r in copy} == {""}
    assert sheet.name.endswith("/Leads (old)")


def test_the_final_flush_keeps_an_operators_edit_of_an_output_cell(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)
    sheet.write_by_job_id({j: {"Status": "completed", "Name": f"found {j}"} for j in JOBS})
    with standin.edit(sheet.key) as book:  # an operator corrects Acme's name after our write
        ws = book.sheet()
        ws.set(1, ws.formatted()[0].index("Name"), "Acme Corp (checked)")

    def operator(book: Spreadsheet) -> None:  # and Beta's, at the worst moment
        ws = book.sheet()
        ws.set(2, ws.formatted()[0].index("Name"), "Beta GmbH")

    standin.before(operator, route=WRITE)
    final = {j: {"Status": "completed", "Name": f"found {j}", "Error": ""} for j in JOBS}
    final["job-gamma"]["Status"] = "completed (again)"  # something to write, so it happens
    result = sheet.write_by_job_id(final, fill_only=["Name"])
    assert result.kept == 1  # Acme's edit, seen in the read
    rows = _by_company(standin, sheet)
    assert rows["Acme"]["Name"] == "Acme Corp (checked)"
    assert rows["Beta"]["Name"] == "Beta GmbH"  # unchanged cells are never rewritten
    assert rows["Gamma"]["Status"] == "completed (again)"


def test_a_duplicated_row_keeping_its_job_id_is_not_written(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)
    with standin.edit(sheet.key) as book:  # copy Acme's row above it, change the copy
        ws = book.sheet()
        ws.insert_rows(1)
        for col, value in enumerate(ws.formatted()[2]):
            ws.set(1, col, value)
        ws.set(1, 0, "Acme Copy")
    result = sheet.write_by_job_id({"job-acme": {"Status": "completed"}})
    assert result == WriteResult(cells=1)
    rows = _by_company(standin, sheet)
    assert rows["Acme"]["Status"] == "completed"
    assert rows["Acme Copy"]["Status"] == ""
    assert rows["Acme Copy"]["Job ID"] == "job-acme"  # the caller gives the copy a new job


def test_a_duplicated_job_id_with_no_tagged_row_is_reported_not_guessed(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet([["Company", "Status", "Job ID"], ["Acme", "", "j1"], ["Copy", "", "j1"]])
    result = sheet.write_by_job_id({"j1": {"Status": "completed"}})
    assert result.cells == 0
    (reason,) = result.unwritable["j1"]
    assert reason.startswith("job id j1 is on rows 2, 3")
    assert {r["Status"] for r in _table(standin, sheet)} == {""}


def test_a_protected_cell_fails_only_its_own_cell(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)

    def operator(book: Spreadsheet) -> None:  # protects Beta's Status at the worst moment
        book.protect(book.sheet(), Box(2, 2, 3, 3), description="Beta is on hold")

    standin.before(operator, route=WRITE)
    result = sheet.write_by_job_id({j: {"Status": "completed", "Error": "-"} for j in JOBS})
    assert result.unwritable == {
        "job-beta": ("cell C3 is protected ('Beta is on hold'); not written",)
    }
    assert result.cells == 5
    rows = _by_company(standin, sheet)
    assert [rows[c]["Status"] for c in ("Acme", "Beta", "Gamma")] == ["completed", "", "completed"]
    assert rows["Beta"]["Error"] == "-"  # the rest of Beta's row was written
    # The next flush knows the protection: no failed request, the same report.
    standin.clear_log()
    again = sheet.write_by_job_id({"job-beta": {"Status": "completed"}})
    assert again.unwritable == {
        "job-beta": ("cell C3 is protected ('Beta is on hold'); not written",)
    }
    assert standin.count(status=400) == 0


def test_a_merged_cell_fails_only_its_own_cell(google_sheet: MakeSheet, standin: StandIn) -> None:
    sheet = _prepared(google_sheet)
    with standin.edit(sheet.key) as book:
        book.sheet().merge(2, 1, 3, 3)  # B3:C3, Beta's Website and Status
    table = sheet.read()
    assert table.merged == {(1, 2): "B3:C3"}
    result = sheet.write_by_job_id({"job-beta": {"Status": "completed", "Error": "-"}})
    assert result.unwritable == {"job-beta": ("cell C3 is inside merged range B3:C3; not written",)}
    assert _by_company(standin, sheet)["Beta"]["Error"] == "-"


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda book: book.sheets.remove(book.sheet("Leads")), SheetNotFound),
        (lambda book: book.shared_with.clear(), SheetAccessDenied),
    ],
    ids=["worksheet deleted", "sharing revoked"],
)
def test_final_statuses_that_cannot_be_written_raise(
    google_sheet: MakeSheet, standin: StandIn, edit: Callable[[Spreadsheet], None], error: type
) -> None:
    sheet = _prepared(google_sheet, title="Leads")
    with standin.edit(sheet.key) as book:
        book.duplicate(book.sheet("Leads"), "Other")  # a second tab, so one can go
    standin.before(edit, route=WRITE)
    with pytest.raises(error):
        sheet.write_by_job_id({j: {"Status": "completed"} for j in JOBS})


def test_a_renamed_job_id_header_leaves_statuses_in_the_store(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)

    def operator(book: Spreadsheet) -> None:
        book.sheet().set(0, 3, "Ticket")

    standin.before(operator, route=WRITE)
    with pytest.raises(MissingColumn, match="'Job ID' not found"):
        sheet.write_by_job_id({j: {"Status": "completed"} for j in JOBS})


def test_a_cleared_job_id_column_leaves_every_job_missing(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = _prepared(google_sheet)
    with standin.edit(sheet.key) as book:
        for row in range(1, 4):
            book.sheet().set(row, 3, None)
    result = sheet.write_by_job_id({j: {"Status": "completed"} for j in JOBS})
    assert result == WriteResult(missing=frozenset(JOBS))
    assert {r["Status"] for r in _table(standin, sheet)} == {""}


def test_a_token_endpoint_down_is_transient(
    google_sheet: MakeSheet, standin: StandIn, service_account_key: object
) -> None:
    sheet = _prepared(google_sheet)
    standin.revoke_tokens()
    standin.inject("reset", times=1_000, kind="token")  # connections to it are refused
    with pytest.raises(SheetUnavailable) as caught:
        sheet.write_by_job_id({"job-acme": {"Status": "completed"}})
    assert caught.value.retry_later
    assert "token endpoint" in str(caught.value) and "retried later" not in str(caught.value)


def test_one_429_pausing_the_bucket_between_read_and_write(
    google_sheet: MakeSheet, standin: StandIn, standin_clock: ManualClock
) -> None:
    sheet = _prepared(google_sheet)
    standin_clock.advance(60)
    standin.inject("429", kind="write")
    start = standin_clock.now()

    def operator(book: Spreadsheet) -> None:  # mid-pause: a row on top, a column on the left
        ws = book.sheet()
        ws.insert_rows(1)
        ws.insert_columns(0)
        ws.set(0, 0, "Notes")
        ws.set(1, 0, "new row")

    standin.at_time(start + 30, operator)
    standin.clear_log()
    result = sheet.write_by_job_id({j: {"Status": "completed"} for j in JOBS})
    assert result == WriteResult(cells=3)
    writes = [r for r in standin.log if r.route == WRITE]
    assert [w.status for w in writes] == [429, 200]  # and no write to put anything back
    planned_on = [r for r in standin.log if r.kind == "read" and r.at <= writes[1].at][-1]
    assert planned_on.at == writes[1].at >= start + 60  # the read came after the pause
    rows = _table(standin, sheet)
    assert rows[0] == {
        "Notes": "new row",
        "Company": "",
        "Website": "",
        "Status": "",
        "Job ID": "",
        "Updated": "",
        "Error": "",
    }
    assert [(r["Company"], r["Status"]) for r in rows[1:]] == [
        ("Acme", "completed"),
        ("Beta", "completed"),
        ("Gamma", "completed"),
    ]


def test_cjk_text_is_split_on_the_bytes_sent(google_sheet: MakeSheet, standin: StandIn) -> None:
    rows = [["Company"]] + [[f"会社{i}"] for i in range(60)]
    sheet = _prepared(google_sheet, rows, max_payload_bytes=200_000)
    text = "東京都千代田区" * 1_500  # 10,500 characters: 31,500 bytes as UTF-8, 63,000 escaped
    jobs = sheet.read().job_rows()
    standin.clear_log()
    sheet.write_by_job_id({j: {"Error": text} for j in jobs})
    writes = [r for r in standin.log if r.route == WRITE]
    assert all(w.size <= 200_000 for w in writes)
    assert len(writes) >= 60 * 31_500 // 200_000
    assert {r["Error"] for r in _table(standin, sheet)} == {text}


HAND_SET = [
    ["Company", "Website", "Status", "Job ID"],
    ["Acme", "acme.example", "", "job-acme"],
    ["Hold Co", "hold.example", "do not touch", ""],
    ["Beta", "beta.example", "", "job-beta"],
    ["Gamma", "gamma.example", "", "job-gamma"],
]


def test_a_blank_row_inserted_at_the_worst_moment_keeps_no_status_of_ours(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet(HAND_SET)
    sheet.ensure_columns(["Status", "Job ID"])
    standin.before(lambda book: book.sheet().insert_rows(1), route=WRITE)
    result = sheet.write_by_job_id({j: {"Status": "completed"} for j in JOBS})
    assert result == WriteResult(cells=3)
    _, *rows = standin.values(sheet.key)
    assert rows == [
        [],  # the operator's new row: what we wrote there by mistake was taken back
        ["Acme", "acme.example", "completed", "job-acme"],
        ["Hold Co", "hold.example", "do not touch"],
        ["Beta", "beta.example", "completed", "job-beta"],
        ["Gamma", "gamma.example", "completed", "job-gamma"],
    ]


def test_a_hand_set_status_sorted_under_our_write_is_put_back(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet(HAND_SET)
    sheet.ensure_columns(["Status", "Job ID"])
    standin.before(lambda book: book.sheet().sort_by(0, descending=True), route=WRITE)
    sheet.write_by_job_id({j: {"Status": "completed"} for j in JOBS})
    rows = _by_company(standin, sheet)
    assert rows["Hold Co"]["Status"] == "do not touch"  # its previous value was known
    assert {rows[c]["Status"] for c in ("Acme", "Beta", "Gamma")} == {"completed"}


def test_a_cell_whose_previous_value_is_unknown_is_never_cleared_and_is_named(
    google_sheet: MakeSheet, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    # Two rows nobody can tell apart (no Job ID, same cells) but for their Status.
    twins = [
        ["Company", "Website", "Status", "Job ID"],
        ["Acme", "acme.example", "", "job-acme"],
        ["Twin", "", "on hold", ""],
        ["Twin", "", "", ""],
    ]
    sheet = google_sheet(twins)
    sheet.ensure_columns(["Status", "Job ID"])

    def operator(book: Spreadsheet) -> None:  # the first twin moves up into Acme's place
        book.sheet().move_rows(2, 3, 1)

    standin.before(operator, route=WRITE)
    with caplog.at_level("WARNING", logger="sheets_integration.google_updates"):
        sheet.write_by_job_id({"job-acme": {"Status": "completed"}})
    _, *rows = standin.values(sheet.key)
    assert rows[0] == ["Twin", "", "completed"]  # left as it is: not cleared to a guess
    assert rows[1] == ["Acme", "acme.example", "completed", "job-acme"]
    assert any(
        "cell C2 received 'completed'" in r.message and "check it" in r.message
        for r in caplog.records
    )
