"""A Google worksheet read a page of rows at a time: the same table, a few requests, flat memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest

from gsheets_standin import Formula, ServiceAccountKey, StandIn
from gsheets_standin._model import Spreadsheet
from sheets_integration.google_pages import Paging
from sheets_integration.google_sheet import GoogleSheet
from sheets_integration.sheet import Table
from tests.support.google import *  # noqa: F403

MakeSheet = Callable[..., GoogleSheet]
READ = "values.batchGetByDataFilter"
GRID = "spreadsheets.getByDataFilter"
SMALL = Paging(rows=3, ranges=2)  # six rows a request


def _rows(count: int) -> list[list[str]]:
    return [[f"Company {i}", f"https://c{i}.example", f"00{i}"] for i in range(count)]


@pytest.fixture
def fitted_sheet(
    standin: StandIn, service_account_key: ServiceAccountKey, google_sheet_factory: MakeSheet
) -> MakeSheet:
    """`make(rows, **options)`: a sheet whose grid is as high as its rows (no blank grid
    below them), read six rows a request."""

    def make(rows: list[list[object]], **options: object) -> GoogleSheet:
        key = standin.create_spreadsheet(
            {"Leads": rows}, shared_with=[service_account_key.email], rows=len(rows)
        )
        return google_sheet_factory(f"{key}/Leads", paging=SMALL, **options)

    return make


def test_a_sheet_read_in_pages_is_the_sheet_and_costs_a_request_per_page_group(
    fitted_sheet: MakeSheet, standin: StandIn
) -> None:
    # Blank rows inside a page and at the start of one are kept, those at the end dropped.
    body: list[list[str]] = _rows(20)
    body[3] = []  # sheet row 5, inside the first request's second page
    body[5] = []  # sheet row 7: the first row of the second request
    body[11] = []
    sheet = fitted_sheet([["Company", "Website", "Zip"], *body, [], []])
    sheet.worksheet_title()
    standin.clear_log()
    table = sheet.read()
    assert table == Table(["Company", "Website", "Zip"], body)
    assert table.cell(4, "Zip") == "004" and table.cell(19, "Company") == "Company 19"
    # 23 rows: four requests of six rows each, for the values and for the links.
    assert standin.count(route=READ) == 4
    assert standin.count(route=GRID) == 4
    assert sheet.read_values() == Table(["Company", "Website", "Zip"], body)


def test_a_grid_taller_than_its_rows_is_not_read_page_by_blank_page(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    # A new Google sheet has 1,000 rows; these 9 rows and the 40 after a gap of blank rows
    # take three requests (six rows, the short page, then the rest at once), not 167.
    body: list[list[str]] = [*_rows(9), *([] for _ in range(30)), *_rows(40)]
    sheet = google_sheet([["Company", "Website", "Zip"], *body], paging=SMALL)
    sheet.worksheet_title()
    standin.clear_log()
    assert sheet.read_values() == Table(["Company", "Website", "Zip"], body)
    assert standin.count(route=READ) == 3


def test_a_small_sheet_is_still_read_in_one_request_of_each_kind(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    sheet = google_sheet([["Company"], ["Acme"], ["Beta"]])
    sheet.worksheet_title()
    standin.clear_log()
    assert sheet.read() == Table(["Company"], [["Acme"], ["Beta"]])
    assert standin.count(route=READ) == 1 and standin.count(route=GRID) == 1


def test_links_on_every_page_are_read(fitted_sheet: MakeSheet) -> None:
    rows: list[list[object]] = [["Company", "Website"]]
    rows += [[f"c{i}", Formula(f'=HYPERLINK("https://c{i}.example","site")')] for i in range(14)]
    sheet = fitted_sheet(rows)
    table = sheet.read()
    assert [table.target(i, "Website") for i in range(14)] == [
        f"https://c{i}.example" for i in range(14)
    ]


def test_rows_inserted_between_two_pages_make_the_read_start_over(
    fitted_sheet: MakeSheet, standin: StandIn
) -> None:
    body = _rows(15)
    sheet = fitted_sheet([["Company", "Website", "Zip"], *body])
    sheet.worksheet_title()

    def insert_at_top(book: Spreadsheet) -> None:
        ws = book.sheet()
        ws.insert_rows(1)
        ws.set(1, 0, "New lead")

    # Before the second values request: the first six rows were read, then the sheet moved.
    standin.before(insert_at_top, route=READ, skip=1)
    standin.clear_log()
    table = sheet.read()
    # What the sheet holds after the insert, not a mix (no row twice, none lost).
    assert table.rows[0] == ["New lead"]
    assert list(table.rows)[1:] == body
    assert standin.count(route=READ) == 2 + 3  # the read that saw the move, then a whole one


def test_rows_deleted_below_the_last_read_height_are_read_again(
    fitted_sheet: MakeSheet, standin: StandIn
) -> None:
    body = _rows(15)
    sheet = fitted_sheet([["Company", "Website", "Zip"], *body])
    sheet.read()
    with standin.edit(sheet.key) as book:
        ws = book.sheet()
        ws.delete_rows(4, ws.row_count)  # the grid shrinks: the old height's ranges fail
    assert sheet.read_values() == Table(["Company", "Website", "Zip"], body[:3])


def _peak_of_read(make: MakeSheet, standin: StandIn, rows: int) -> int:
    sheet = make([["Company", "Website", "Zip"], *_rows(rows)], paging=Paging(rows=250, ranges=2))
    sheet.worksheet_title()
    tracemalloc.start()
    try:
        table = sheet.read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table.rows) == rows and table.cell(rows - 1, "Zip") == f"00{rows - 1}"
    return peak


def test_reading_a_sheet_eight_times_as_high_takes_about_the_same_memory(
    google_sheet: MakeSheet, standin: StandIn
) -> None:
    # The stand-in runs in this process: its answers are traced too, a page each.
    small = _peak_of_read(google_sheet, standin, 1_000)
    big = _peak_of_read(google_sheet, standin, 8_000)
    # All at once the read's peak grows with the rows (eightfold); a page at a time it
    # holds one answer, and the rows as marshalled bytes (~60 bytes each).
    assert big < 2 * small, (small, big)
