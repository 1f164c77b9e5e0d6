"""Which rows of a sheet a run processes, and why it leaves each other row alone.

Rows are selected by their Status cell: an empty or unfinished status (`queued`,
`processing …`, `cancelled`) is picked up, `failed …` only with `--retry-failed`, anything
with `--force`. Every row not selected is counted under its reason, so a run can say
what happened to every row: "3 rows skipped (Status set by hand: 'do not touch')",
"2 empty rows".
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from progress import JobSnapshot
from sheets_integration.columns import RunColumns
from sheets_integration.errors import SheetError
from sheets_integration.sheet import Table

# Status cells that mean "not finished": picked up again by the next run.
_UNFINISHED = ("", "queued", "processing", "cancelled")
_COMPLETED = "completed"
# A message names this many distinct hand-typed statuses, then says how many more.
_SHOWN_STATUSES = 3


def rows_text(n: int) -> str:
    """ "1 row", "2 rows"."""
    return f"{n} row" if n == 1 else f"{n} rows"


def wants_processing(status: str, *, retry_failed: bool, force: bool) -> bool:
    """Row selection by the Status cell: unfinished rows; failed ones with --retry-failed."""
    text = status.strip().casefold()
    if force:
        return True
    if text.startswith("failed"):
        return retry_failed
    return any(text == s or (s and text.startswith(s)) for s in _UNFINISHED)


def is_blank(values: Sequence[str]) -> bool:
    """True for a row with no value in any cell."""
    return not any(str(v).strip() for v in values)


def is_ours(status: str) -> bool:
    """Whether a Status text is one sheetbatch writes (as opposed to one typed by hand)."""
    text = status.strip().casefold()
    return (
        text == _COMPLETED
        or text.startswith("failed")
        or wants_processing(text, retry_failed=False, force=False)
    )


@dataclass
class Skipped:
    """The rows a run leaves alone, counted by reason."""

    empty: int = 0
    completed: int = 0
    failed: int = 0
    moved: int = 0
    by_hand: Counter[str] = field(default_factory=Counter)

    def add(self, status: str) -> None:
        """Count a non-empty row not selected because of its Status cell."""
        text = status.strip()
        if text.casefold() == _COMPLETED:
            self.completed += 1
        elif text.casefold().startswith("failed"):
            self.failed += 1
        else:
            self.by_hand[text] += 1

    @property
    def total(self) -> int:
        """How many rows were left alone."""
        return self.empty + self.completed + self.failed + self.moved + sum(self.by_hand.values())

    def phrases(self) -> list[str]:
        """One phrase per reason: "2 empty rows", "3 rows skipped (Status set by hand: …)"."""
        out: list[str] = []
        if self.completed:
            out.append(f"{rows_text(self.completed)} already completed")
        if self.failed:
            them = "it" if self.failed == 1 else "them"
            out.append(f"{rows_text(self.failed)} failed before (--retry-failed redoes {them})")
        if self.by_hand:
            texts = [repr(text) for text, _ in self.by_hand.most_common(_SHOWN_STATUSES)]
            more = len(self.by_hand) - len(texts)
            shown = ", ".join(texts) + (f" and {more} more" if more else "")
            count = sum(self.by_hand.values())
            out.append(f"{rows_text(count)} skipped (Status set by hand: {shown})")
        if self.empty:
            out.append(f"{self.empty} empty row" + ("" if self.empty == 1 else "s"))
        if self.moved:
            out.append(f"{rows_text(self.moved)} moved while being assigned job ids (next run)")
        return out

    def as_json(self) -> dict[str, Any]:
        """The counts as a JSON object (for `--json` and the API)."""
        return {
            "total": self.total,
            "empty": self.empty,
            "completed": self.completed,
            "failed": self.failed,
            "moved": self.moved,
            "by_hand": dict(self.by_hand),
            "reasons": self.phrases(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Skipped:
        """The counts back from `as_json` (a worker process's answer)."""
        return cls(
            empty=int(data["empty"]),
            completed=int(data["completed"]),
            failed=int(data["failed"]),
            moved=int(data["moved"]),
            by_hand=Counter({str(k): int(v) for k, v in data["by_hand"].items()}),
        )


@dataclass
class Selection:
    """What `prepare` made of a sheet's rows: jobs queued, rows written from the store, skips."""

    queued: int = 0
    resumed: int = 0
    written_from_store: int = 0
    unwritten_from_store: int = 0
    copies: int = 0
    skipped: Skipped = field(default_factory=Skipped)

    def phrases(self) -> list[str]:
        """What became of the rows not processed: the skips by reason, then the rows whose
        finished state was written from the store ("3 rows finished before, written from
        the store")."""
        out = self.skipped.phrases()
        if self.written_from_store:
            out.append(
                f"{rows_text(self.written_from_store)} finished before, written from the store"
            )
        if self.unwritten_from_store:
            out.append(
                f"{rows_text(self.unwritten_from_store)} finished before, not written yet "
                "(the sheet refused the write; the next run writes them)"
            )
        return out

    @property
    def nothing_to_do(self) -> bool:
        """True when no row is to be processed."""
        return self.queued == 0 and self.resumed == 0

    def as_json(self) -> dict[str, Any]:
        """The selection as a JSON object (for `--json` and the API)."""
        return {
            "queued": self.queued,
            "resumed": self.resumed,
            "written_from_store": self.written_from_store,
            "unwritten_from_store": self.unwritten_from_store,
            "copies": self.copies,
            "skipped": self.skipped.as_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        """The selection back from `as_json` (a worker process's answer)."""
        return cls(
            queued=int(data["queued"]),
            resumed=int(data["resumed"]),
            written_from_store=int(data["written_from_store"]),
            unwritten_from_store=int(data["unwritten_from_store"]),
            copies=int(data["copies"]),
            skipped=Skipped.from_json(data["skipped"]),
        )


class NothingToDo(SheetError):
    """Not a failure: no row of the sheet is to be processed, so no batch was recorded.

    `selection` says what happened to every row (already completed, empty, skipped...).
    """

    def __init__(self, sheet: str, selection: Selection) -> None:
        reasons = selection.phrases() or ["the sheet has no data rows"]
        super().__init__(f"{sheet}: nothing to do: {', '.join(reasons)}")
        self.sheet = sheet
        self.selection = selection


def select_rows(
    table: Table,
    known: Mapping[str, JobSnapshot],
    columns: RunColumns,
    inputs: Mapping[str, str],
    skipped: Skipped,
    *,
    retry_failed: bool,
    force: bool,
) -> tuple[array[int], set[int]]:
    """The data rows to process (4 bytes a row), and which of them are copies of another
    row's job.

    `known` holds the store's snapshots of the job ids in the sheet; `inputs` maps the
    pipeline's input names to sheet columns. A Job ID on several rows belongs to the row
    the store recorded (by its input values); every other such row is a copy: it gets a
    new job, unless its Status was set by hand. Rows left alone are counted in `skipped`.
    """
    copies = _copies(table, known, columns.job_id, inputs)
    selected = array("I")
    for i, values in enumerate(table.rows):
        if is_blank(values):
            skipped.empty += 1
            continue
        status = table.cell(i, columns.status)
        if (i in copies and is_ours(status)) or wants_processing(
            status, retry_failed=retry_failed, force=force
        ):
            selected.append(i)
        else:
            skipped.add(status)
    return selected, copies


def _copies(
    table: Table,
    known: Mapping[str, JobSnapshot],
    job_column: str,
    inputs: Mapping[str, str],
) -> set[int]:
    rows: dict[str, list[int]] = {}
    for i in range(len(table.rows)):
        job_id = table.cell(i, job_column).strip()
        if job_id in known:
            rows.setdefault(job_id, []).append(i)
    copies: set[int] = set()
    for job_id, found in rows.items():
        if len(found) > 1:
            owner = owner_row(table, known[job_id], found, inputs)
            copies.update(i for i in found if i != owner)
    return copies


def owner_row(
    table: Table, job: JobSnapshot, rows: Sequence[int], inputs: Mapping[str, str]
) -> int:
    """Of the `rows` carrying a job's id, the one the store recorded the job for: the one
    whose input values are the job's (on the job's own row number if several are)."""
    values: Mapping[str, str] = job["inputs"]

    def matches(i: int) -> bool:
        for name, value in values.items():
            column = inputs.get(name, name)
            if value not in (table.target(i, column), table.cell(i, column)):
                return False
        return True

    recorded = int(job["row"]) - 2
    for candidates in ([i for i in rows if matches(i)], list(rows)):
        if recorded in candidates:
            return recorded
        if candidates:
            return candidates[0]
    return rows[0]
