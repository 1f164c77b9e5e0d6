"""`write_by_job_id` on Google: plan on a snapshot of our columns, write through the tags,
verify every row in the answer, repair what a moved row received by mistake.

A round: take a write token; read our tagged columns (Job ID and those written) in one
request; plan each job's cells on the row carrying its id (a duplicated id goes to the row
tagged with it, or nowhere); skip cells that already hold the value, `fill_only` cells an
operator changed, and cells merged or protected (reported in `unwritable`); send the first
request of the plan. Its answer shows the Job ID of every row written at that instant: a
job whose row still held it is done; a row that held another job (or none) received cells
by mistake, which are put back where the read knew their previous value (otherwise left,
and logged with their address), and its job is planned again in the next round.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from gspread.exceptions import APIError

from sheets_integration import google_tags as tags
from sheets_integration.errors import MissingColumn
from sheets_integration.google_api import column_range
from sheets_integration.google_columns import Snapshot
from sheets_integration.google_errors import SheetUnavailable, google_error
from sheets_integration.google_table import SheetState, a1, unwritable
from sheets_integration.google_worksheet import Worksheet
from sheets_integration.google_writes import (
    Column,
    Landing,
    Request,
    moved,
    repairs,
    requests,
    same,
    send,
    text,
)
from sheets_integration.sheet import CellValue, WriteResult, normalize_header

log = logging.getLogger(__name__)

RENDER = "UNFORMATTED_VALUE"  # our own cells compare by value: 100 is 100, "00123" is text
_STUCK_ROUNDS = 3  # rounds in a row in which rows or columns moved under the write
_WATCHED = 3


@dataclass
class _Plan:
    writes: dict[str, dict[int, CellValue]] = field(default_factory=dict)
    owner: dict[int, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    unwritable: dict[str, list[str]] = field(default_factory=dict)
    kept: int = 0
    already: int = 0


@dataclass
class _Totals:
    cells: int = 0
    kept: int = 0
    missing: set[str] = field(default_factory=set)
    unwritable: dict[str, list[str]] = field(default_factory=dict)

    def result(self) -> WriteResult:
        return WriteResult(
            cells=self.cells,
            missing=frozenset(self.missing),
            unwritable={j: tuple(dict.fromkeys(r)) for j, r in self.unwritable.items()},
            kept=self.kept,
        )


def own_columns(ws: Worksheet, names: Mapping[str, str], creatable: Collection[str]) -> None:
    """Make every column of `names` (key -> name) one of our tagged columns, adding the
    `creatable` ones that are missing; raises MissingColumn for another missing one."""
    columns = ws.columns
    for _ in range(3):
        if columns.known(names):
            return
        # An adopted tag is checked against its header by the snapshot, before any write
        # goes through it.
        if columns.sync(ws.state(fresh=True), names, creatable):
            ws.synced()
        absent = [name for key, name in names.items() if key not in columns.tags]
        required = [
            name for key, name in names.items() if key not in columns.tags and key not in creatable
        ]
        if required:
            raise MissingColumn(required[0], ws.name, ws.state().table.header)
        if not absent:
            return
    raise SheetUnavailable(f"{ws.name}: columns kept changing while they were located")


def _watched(ws: Worksheet, ours: Collection[str]) -> list[Column]:
    """A few of the operator's columns (the first named ones), read and written along as
    nulls: with the Job ID they tell rows apart when a row without an id moved."""
    header = ws.state().table.header
    chosen: list[Column] = []
    for position, name in enumerate(header):
        key = normalize_header(name)
        if key and key not in ours and len(chosen) < _WATCHED:
            chosen.append(Column(f"watch:{key}", name, column_range(ws.sheet_id, position)))
    return chosen


def _tagged_rows(ws: Worksheet, jobs: Collection[str]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for meta in ws.api.search_metadata(tags.on_sheet(tags.JOB_KEY, ws.sheet_id, sorted(jobs))):
        tag = tags.parse(meta, tags.JOB_KEY, ws.sheet_id)
        if tag is not None:
            found.setdefault(tag.value, set()).add(tag.index)
    return found


def _plan(
    ws: Worksheet,
    snap: Snapshot,
    pending: Mapping[str, Mapping[str, CellValue]],
    job_key: str,
    fill: Collection[str],
) -> _Plan:
    plan = _Plan()
    # The rows of the jobs written only: a map of every id of a 100,000-row sheet was ~15 MB.
    wanted = {job.strip() for job in pending}
    rows: dict[str, list[int]] = {}
    for offset in range(1, snap.height()):
        job = text(snap.at(job_key, offset)).strip()
        if job in wanted:
            rows.setdefault(job, []).append(offset)
    doubled = {j.strip() for j in pending if len(rows.get(j.strip(), [])) > 1}
    tagged = _tagged_rows(ws, doubled) if doubled else {}
    state = ws.state()
    for job, cells in pending.items():
        offsets = rows.get(job.strip(), [])
        if len(offsets) > 1:
            hit = [o for o in offsets if o in tagged.get(job.strip(), set())]
            if len(hit) != 1:
                where = ", ".join(str(o + 1) for o in offsets)
                plan.unwritable.setdefault(job, []).append(
                    f"job id {job} is on rows {where} and none is known as its own; not "
                    "written (a copied row keeps its Job ID: clear it on the copy)"
                )
                continue
            offsets = hit
        if not offsets:
            plan.missing.add(job)
            continue
        offset = offsets[0]
        for column, value in cells.items():
            key = normalize_header(column)
            reason = unwritable(state.merges, state.protected, offset, snap.index[key])
            current = snap.at(key, offset)
            if reason is not None:
                plan.unwritable.setdefault(job, []).append(reason)
            elif same(current, value):
                plan.already += 1
            elif key in fill and text(current) != "":
                plan.kept += 1
            else:
                plan.writes.setdefault(key, {})[offset] = value
                plan.owner[offset] = job
    return plan


def _put_back(
    ws: Worksheet,
    columns: list[Column],
    job_key: str,
    restore: Mapping[str, Mapping[int, CellValue]],
    occupants: Mapping[int, tuple[str, ...]],
) -> None:
    for request in requests(columns, restore, render=RENDER, limit=ws.max_payload):
        landing = send(ws.api, columns, request)
        wanted = {o: occupants[o] for o in request.offsets}
        if moved(landing, wanted, [job_key]):
            cells = ", ".join(str(o + 1) for o in request.offsets)
            raise SheetUnavailable(
                f"{ws.name}: rows moved again while cells written by mistake were put back "
                f"(rows {cells}); check those rows' status cells, nothing of the store is lost"
            )


def _settle(
    ws: Worksheet,
    snap: Snapshot,
    plan: _Plan,
    columns: list[Column],
    request: Request,
    landing: Landing,
    job_key: str,
    totals: _Totals,
) -> tuple[set[str], bool]:
    """Account for one answered request: (jobs done, whether rows had moved)."""
    lost = {k for k in landing.unmatched if not k.startswith("watch:")} | {
        key
        for key, headers in landing.headers.items()
        if not key.startswith("watch:")
        and any(h is not None and normalize_header(text(h)) != key for h in headers)
    }
    if lost:
        # A column of ours was deleted or renamed at that very instant: what was written
        # there is in our own column; the next round finds the columns again.
        ws.columns.forget(lost)
        log.warning("%s: columns %s changed during a write", ws.name, ", ".join(sorted(lost)))
        if job_key in lost:
            return set(), False
    wanted = {o: (plan.owner[o],) for o in request.offsets}
    shifted = moved(landing, wanted, [job_key])
    if shifted:
        # Who stood there: its Job ID and the watched cells, where their headers held.
        identity = [job_key] + [
            c.key
            for c in columns
            if c.key.startswith("watch:")
            and all(
                h is None or normalize_header(text(h)) == normalize_header(c.name)
                for h in landing.headers.get(c.key, [None])
            )
        ]
        occupants = {
            o: tuple(text(landing.seen.get(k, {}).get(o)).strip() for k in identity)
            for o in shifted
        }
        written = {k: {o: v for o, v in w.items() if o in shifted} for k, w in plan.writes.items()}
        before = {
            o: tuple(text(snap.at(k, o)).strip() for k in identity) for o in range(1, snap.height())
        }
        previous = {k: dict(enumerate(snap.values.get(k, []))) for k in written}
        below = tuple("" for _ in identity)
        fix = repairs(occupants, written, before, previous, below=below)
        _put_back(ws, columns, job_key, fix.restore, {o: occupants[o][:1] for o in shifted})
        for key, offset, value in fix.unknown:  # never cleared: what it held is unknown
            log.warning(
                "%s: cell %s received %r (for job %s) while rows moved, and its previous value "
                "is unknown, so it was left as it is: check it",
                ws.name,
                a1(offset, snap.index[key]),
                value,
                plan.owner[offset],
            )
        log.warning(
            "%s: %d rows moved while statuses were written; %d cells put back",
            ws.name,
            len(shifted),
            sum(len(v) for v in fix.restore.values()),
        )
    done: set[str] = set()
    state: SheetState | None = None
    for offset in request.offsets:
        job = plan.owner[offset]
        if offset in shifted:
            continue
        complete = True
        for key, values in plan.writes.items():
            if offset not in values:
                continue
            if key in lost:
                complete = False
            elif same(landing.seen.get(key, {}).get(offset), values[offset]):
                totals.cells += 1
            else:
                # The cell did not take the value (merged since we looked, most likely).
                state = state or ws.state(fresh=True)
                where = a1(offset, snap.index[key])
                reason = state.unwritable(offset, snap.index[key])
                totals.unwritable.setdefault(job, []).append(
                    reason or f"cell {where} did not keep the value written; not written"
                )
        if complete:
            done.add(job)
    return done, bool(shifted)


def write_updates(
    ws: Worksheet,
    updates: Mapping[str, Mapping[str, CellValue]],
    job_column: str,
    fill: Collection[str],
) -> WriteResult:
    """Write {job id: {column: value}} into the rows carrying each id now (see module)."""
    job_key = normalize_header(job_column)
    totals = _Totals()
    pending = dict(updates)
    stuck = 0
    refreshed = False
    while pending:
        if stuck >= _STUCK_ROUNDS:
            raise SheetUnavailable(
                f"{ws.name}: rows or columns kept moving while statuses were written; "
                "nothing is lost"
            )
        names = {job_key: job_column}
        for cells in pending.values():
            for column in cells:
                names.setdefault(normalize_header(column), column)
        own_columns(ws, names, set(names) - {job_key})
        keys = list(names)
        watched = _watched(ws, keys)
        columns = [Column(k, names[k], tags.by_id(ws.columns.tags[k].metadata_id)) for k in keys]
        with ws.http.reserved("write"):
            snap = ws.columns.snapshot(keys, render=RENDER, watch=watched)
            columns += [c for c in watched if c.key in snap.values]
            if snap.stale:
                ws.columns.forget(snap.stale)
                stuck += 1
                continue
            plan = _plan(ws, snap, pending, job_key, fill)
            totals.cells += plan.already
            totals.kept += plan.kept
            totals.missing |= plan.missing
            for job, reasons in plan.unwritable.items():
                totals.unwritable.setdefault(job, []).extend(reasons)
            planned = set(plan.owner.values())
            pending = {j: v for j, v in pending.items() if j in planned}
            # One request a round: the next round plans on a fresh read.
            request = next(
                requests(columns, plan.writes, render=RENDER, limit=ws.max_payload), None
            )
            if request is None:
                break
            try:
                landing = send(ws.api, columns, request)
            except APIError as exc:
                if google_error(exc).code != 400 or refreshed:
                    raise
                # A 400 on a write is most often a cell protected since we last looked.
                refreshed = True
                ws.state(fresh=True)
                continue
        done, shifted = _settle(ws, snap, plan, columns, request, landing, job_key, totals)
        pending = {j: v for j, v in pending.items() if j not in done}
        stuck = stuck + 1 if shifted or not done else 0
    result = totals.result()
    log.debug("%s: wrote %d cells, %d jobs missing", ws.name, result.cells, len(result.missing))
    return result
