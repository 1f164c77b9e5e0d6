"""What a run that died between recording its jobs and writing their ids leaves behind.

`prepare` records a batch's jobs before their ids are written into the sheet, so a process
that dies in between leaves jobs no sheet row carries. The next run of the sheet withdraws
them (`withdraw_orphans`): never-started jobs whose ids are not in the sheet, and whole
never-started batches of the sheet whose preparing process is gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from progress import Store
from progress.owners import owner_alive
from progress.status import BatchStatus, JobStatus
from sheets_integration.id_index import IdIndex
from sheets_integration.sheet import Table

log = logging.getLogger(__name__)

ORPHAN_REASON = "its job id never reached the sheet (the run that queued it stopped first)"
# A never-started batch of another host's process counts as left behind after this long.
ORPHAN_AGE = 600.0


@dataclass(frozen=True)
class Orphans:
    """The sheet whose leftovers a preparing run (`owner`) withdraws."""

    store: Store
    sheet_name: str
    sheet_spec: str | None
    owner: str

    def withdraw(self, table: Table, job_column: str, resumed: str | None) -> None:
        """Withdraw the leftovers `table` (the sheet as read, ids in `job_column`) shows.

        In the batch being resumed: queued jobs that never started and whose ids are not in
        the sheet. Other running batches of this sheet that never started a job, none of
        whose ids is in the sheet, and whose preparing process is gone: cancelled whole.

        The store's jobs are read a page at a time and the sheet's ids indexed compactly
        (`IdIndex`), only when a job must be looked up: preparing a re-run of a finished
        500,000-row sheet holds neither a snapshot of each queued job nor a dict of its ids.
        """
        store = self.store
        in_sheet: IdIndex | None = None  # the sheet's ids, indexed once if needed at all

        def sheet_holds(job_id: str) -> bool:
            nonlocal in_sheet
            if in_sheet is None:
                in_sheet = sheet_ids(table, job_column)
            return job_id in in_sheet

        if resumed is not None:
            pages = store.job_id_pages(resumed, statuses=[JobStatus.QUEUED], unstarted=True)
            for page in pages:
                for job_id in page:
                    if not sheet_holds(job_id):
                        store.cancel_job(job_id, ORPHAN_REASON)
        for batch in store.batches(status=BatchStatus.RUNNING, sheet=self.sheet_name):
            if batch["batch_id"] == resumed or batch["started"] is not None:
                continue
            options = batch["options"]
            if self.sheet_spec and options.get("sheet_spec") not in (None, self.sheet_spec):
                continue
            if not self.preparer_gone(options.get("prepared_by"), batch["created"]):
                continue
            pages = store.job_id_pages(batch["batch_id"])
            if any(sheet_holds(job_id) for page in pages for job_id in page):
                continue
            store.cancel_batch(batch["batch_id"], ORPHAN_REASON)
            log.warning(
                "batch %s of %s never wrote its job ids into the sheet (its run stopped "
                "first); cancelled",
                batch["batch_id"],
                self.sheet_name,
            )

    def preparer_gone(self, owner: object, created: str | None) -> bool:
        """Whether the process that prepared a batch (created at `created`) is gone."""
        alive = owner_alive(owner, me=self.owner) if isinstance(owner, str) else None
        if alive is not None:
            return not alive
        # Another host's process (or an older store): only a batch left long enough.
        try:
            age = self.store.clock() - datetime.fromisoformat(str(created)).timestamp()
        except ValueError:
            return False
        return age > ORPHAN_AGE


def sheet_ids(table: Table, job_column: str) -> IdIndex:
    """Every id the sheet's `job_column` shows (stripped), as a compact set."""
    position = table.index(job_column)
    if position is None:
        return IdIndex(())
    cells = (values[position].strip() if position < len(values) else "" for values in table.rows)
    return IdIndex(cell for cell in cells if cell)
