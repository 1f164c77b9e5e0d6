"""`assign_job_ids` on Google: job ids written through the Job ID column's tag, each row
checked by its input cells in the same answer, rows that took their id tagged with it.

Taking a write token first, the worksheet is read whole and the ids planned on it
(`safety.plan_job_ids`: a row that changed since the caller read it is refused). One
request writes the ids and rides along, as nulls, the input cells named in `expected`; its
answer shows them at the instant the ids landed. A row whose inputs are another row's by
then took an id by mistake: it is refused, and its Job ID cell put back where the read
knew what it held (rows with those inputs all agreeing), or else left and logged. If an
input column itself moved at that instant, a fresh read decides instead: the id stands
where exactly one row carries it, with the expected inputs.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Mapping

from sheets_integration import google_tags as tags
from sheets_integration.google_api import column_range
from sheets_integration.google_columns import column_of
from sheets_integration.google_errors import SheetUnavailable
from sheets_integration.google_pages import read_pages
from sheets_integration.google_table import a1
from sheets_integration.google_tags import Tag
from sheets_integration.google_updates import own_columns
from sheets_integration.google_worksheet import Worksheet
from sheets_integration.google_writes import (
    Column,
    Landing,
    Request,
    moved,
    repairs,
    requests,
    send,
    text,
)
from sheets_integration.safety import plan_job_ids
from sheets_integration.sheet import Table, normalize_header

log = logging.getLogger(__name__)

RENDER = "FORMATTED_VALUE"  # the inputs compare with the rows as the caller read them


def _read(ws: Worksheet, job_key: str, job_column: str) -> tuple[Table, Tag]:
    """The worksheet's values (in pages), and our Job ID tag on the column so headed (read
    along in the first page's request)."""
    for _ in range(3):
        tag = ws.columns.tags.get(job_key)
        if tag is not None:
            header, rows, found = read_pages(
                ws.api,
                ws.sheet_id,
                ws.height,
                render=RENDER,
                paging=ws.paging,
                extra=[tags.by_id(tag.metadata_id)],
                what=ws.name,
            )
            table = Table(header, rows)
            index = next(
                (column_of(str(value_range.get("range", "A1"))) for value_range, _ in found),
                None,
            )
            if index is not None and table.index(job_column) == index:
                return table, Tag(tag.metadata_id, tag.value, index)
            ws.columns.forget([job_key])
        own_columns(ws, {job_key: job_column}, {job_key})
    raise SheetUnavailable(f"{ws.name}: the {job_column!r} column kept changing")


def _inputs(table: Table, row: int, watched: list[Column]) -> tuple[str, ...]:
    return tuple(table.cell(row, c.name) for c in watched)


class _Assignment:
    """One attempt's bookkeeping: the read it planned on, and where ids landed."""

    def __init__(self, ws: Worksheet, table: Table, job: Column, watched: list[Column]) -> None:
        self.ws, self.table, self.job, self.watched = ws, table, job, watched
        self.columns = [job, *watched]
        self.refused: set[int] = set()
        self.landed: dict[int, str] = {}

    def settle(self, request: Request, landing: Landing, writes: Mapping[int, str]) -> None:
        """Account for one answered request."""
        offsets = set(request.offsets)
        if self.job.key in landing.unmatched:
            self.refused |= {o - 1 for o in offsets}  # the column went: nothing was written
            return
        seen = landing.seen.get(self.job.key, {})
        missed = {o for o in offsets if text(seen.get(o)).strip() != writes[o]}
        self.refused |= {o - 1 for o in missed}
        offsets -= missed
        headers_ok = all(
            h is None or normalize_header(text(h)) == c.key
            for c in self.columns
            for h in landing.headers.get(c.key, [None])
        )
        if not headers_ok:
            self._check_late(offsets, writes)
            return
        keys = [c.key for c in self.watched]
        intended = {o: _inputs(self.table, o - 1, self.watched) for o in offsets}
        shifted = moved(landing, intended, keys)
        if shifted:
            self._put_back(shifted, writes)
        for offset in offsets - set(shifted):
            self.landed[offset - 1] = writes[offset]

    def _put_back(self, shifted: Mapping[int, tuple[str, ...]], writes: Mapping[int, str]) -> None:
        rows = range(len(self.table.rows))
        before = {i + 1: _inputs(self.table, i, self.watched) for i in rows}
        previous = {self.job.key: {i + 1: self.table.cell(i, self.job.name) for i in rows}}
        written = {self.job.key: {o: writes[o] for o in shifted}}
        below = tuple("" for _ in self.watched)
        fix = repairs(shifted, written, before, previous, below=below)
        keys = [c.key for c in self.watched]
        for request in requests(
            self.columns, fix.restore, render=RENDER, limit=self.ws.max_payload
        ):
            landing = send(self.ws.api, self.columns, request)
            if moved(landing, {o: shifted[o] for o in request.offsets}, keys):
                raise SheetUnavailable(
                    f"{self.ws.name}: rows moved again while job ids written by mistake were "
                    "taken back; check the Job ID column for an id on the wrong row"
                )
        for _, offset, value in fix.unknown:
            log.warning(
                "%s: cell %s received job id %s while rows moved, and what it held before is "
                "unknown, so it was left as it is: check it",
                self.ws.name,
                a1(offset, self.ws.columns.tags[self.job.key].index),
                value,
            )
        log.warning("%s: %d rows moved while job ids were written", self.ws.name, len(shifted))
        self.refused |= {o - 1 for o in shifted}

    def _check_late(self, offsets: set[int], writes: Mapping[int, str]) -> None:
        # An input column moved at that instant: the answer cannot tell rows apart, but an
        # id travels with its row, so a fresh read shows where each one stands.
        fresh = self.ws.state(fresh=True).table
        carrying: dict[str, list[int]] = {}
        for i in range(len(fresh.rows)):
            carrying.setdefault(fresh.cell(i, self.job.name).strip(), []).append(i)
        for offset in offsets:
            job_id, row = writes[offset], offset - 1
            rows = carrying.get(job_id, [])
            wanted = _inputs(self.table, row, self.watched)
            if len(rows) == 1 and _inputs(fresh, rows[0], self.watched) == wanted:
                self.landed[row] = job_id
            else:
                self.refused.add(row)
                log.warning(
                    "%s: job id %s may stand on a row that is not its own (columns moved "
                    "while it was written): check the Job ID column",
                    self.ws.name,
                    job_id,
                )


def _tag_rows(
    ws: Worksheet, rows: Mapping[int, str], replaced: Mapping[int, str], fresh: Collection[int]
) -> None:
    """Tag each row with its job id (and untag the ids it no longer carries).

    Ids just written on `fresh` rows are new: no tag can carry them yet, so only the
    others are looked up.
    """
    if not rows:
        return
    wanted = {job for row, job in rows.items() if row not in fresh} | set(replaced.values())
    present: dict[str, set[tuple[int, int]]] = {}
    if wanted:
        for meta in ws.api.search_metadata(
            tags.on_sheet(tags.JOB_KEY, ws.sheet_id, sorted(wanted))
        ):
            tag = tags.parse(meta, tags.JOB_KEY, ws.sheet_id)
            if tag is not None:
                present.setdefault(tag.value, set()).add((tag.metadata_id, tag.index))
    deletes = (
        tags.delete(metadata_id)
        for row, old in replaced.items()
        for metadata_id, index in present.get(old, set())
        if index == row + 1
    )
    # Made as they are sent, not a list of a request per row of a 100,000-row sheet.
    creates = (
        tags.create(tags.JOB_KEY, job_id, ws.sheet_id, "ROWS", row + 1)
        for row, job_id in sorted(rows.items())
        if not any(index == row + 1 for _, index in present.get(job_id, set()))
    )
    ws.api.batch_updates(itertools.chain(deletes, creates), ws.max_payload - 100)


def assign_ids(
    ws: Worksheet,
    assignments: Mapping[int, str],
    expected: Mapping[int, Mapping[str, str]],
    job_column: str,
) -> set[int]:
    """Write `assignments` (data row -> job id) as described above; the rows refused."""
    job_key = normalize_header(job_column)
    own_columns(ws, {job_key: job_column}, {job_key})
    state = ws.state()  # merges and protections as last read
    with ws.http.reserved("write"):
        table, tag = _read(ws, job_key, job_column)
        plan = plan_job_ids(table, assignments, expected, job_column=job_column)
        refused = set(plan.refused)
        writes: dict[int, str] = {}
        for cell in plan.cells:
            if cell.row < 0:
                continue
            reason = state.unwritable(cell.row + 1, tag.index)
            if reason is not None:
                refused.add(cell.row)
                log.warning("%s: %s (job id %s)", ws.name, reason, cell.text)
            else:
                writes[cell.row + 1] = cell.text
        names = dict.fromkeys(c for row in expected.values() for c in row)
        watched = [
            Column(normalize_header(n), n, column_range(ws.sheet_id, position))
            for n in names
            if normalize_header(n) != job_key and (position := table.index(n)) is not None
        ]
        job = Column(job_key, job_column, tags.by_id(tag.metadata_id))
        work = _Assignment(ws, table, job, watched)
        batch = requests(work.columns, {job_key: writes}, render=RENDER, limit=ws.max_payload)
        first = next(batch, None)
        landing = None if first is None else send(ws.api, work.columns, first)
    # Each answer is settled before the next request is made: the bodies and answers of
    # a 100,000-row sheet are not held at once.
    if first is not None and landing is not None:
        work.settle(first, landing, writes)
    for request in batch:  # the rest of the requests, made one at a time
        work.settle(request, send(ws.api, work.columns, request), writes)
    carrying = {
        row: job_id
        for row, job_id in assignments.items()
        if 0 <= row < len(table.rows) and table.cell(row, job_column).strip() == job_id
    }
    replaced = {
        row: old
        for row in work.landed
        for column, old in expected.get(row, {}).items()
        if normalize_header(column) == job_key and old.strip() and old.strip() != work.landed[row]
    }
    fresh = {row for row in work.landed if row not in carrying}
    _tag_rows(ws, {**carrying, **work.landed}, replaced, fresh)
    return refused | work.refused
