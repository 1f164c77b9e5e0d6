"""The batch processor: turns a sheet's rows into jobs and runs them, resuming what it can.

`prepare()` reads the sheet, selects the rows to process, writes a job id into each one's
`Job ID` cell and records the jobs in the store (or resumes an interrupted batch of the same
sheet). `run()` executes the jobs on a worker pool while the sheet writer keeps the sheet's
status cells current, and returns the final batch snapshot.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.phase import Pipeline
from pipeline.runner import JobRunner
from pipeline.workers import BatchExecutor, WorkerPool
from progress import BatchSnapshot, JobSnapshot, Store
from progress.batch_writes import NewJob
from progress.errors import BatchExists, UnknownBatch
from progress.notify_model import Targets
from progress.owners import new_owner, owner_alive
from progress.status import BatchStatus, JobStatus
from sheets_integration.columns import (
    RunColumns,
    check_merged_targets,
    check_ownership,
    check_same_columns,
)
from sheets_integration.errors import BatchBusy, MissingColumn, SheetError
from sheets_integration.id_assignment import assign_ids
from sheets_integration.orphans import Orphans
from sheets_integration.planned import PlannedJobs
from sheets_integration.row_cells import row_cells
from sheets_integration.selection import (
    NothingToDo,
    Selection,
    rows_text,
    select_rows,
    wants_processing,
)
from sheets_integration.sheet import Sheet, Table, normalize_header
from sheets_integration.writer import FlushReport, SheetWriter, WriteOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How a batch runs. `columns` maps the pipeline's input names to sheet column names;
    `output_columns` maps a written column (output or bookkeeping) to the sheet column it
    lands in, `overwrite` names sheet columns the run may write although they hold the
    operator's values."""

    concurrency: int = 8
    retry_failed: bool = False
    force: bool = False
    flush_interval: float = 2.0
    lease_seconds: float = 30.0
    max_attempts: int = 3
    columns: Mapping[str, str] = field(default_factory=dict)
    output_columns: Mapping[str, str] = field(default_factory=dict)
    overwrite: Sequence[str] = ()
    #: Where the batch's outcome is told (kept with the batch: its final transition records
    #: the notifications).
    notify: Targets = field(default_factory=Targets)


@dataclass(frozen=True)
class RunResult:
    """A finished run: the batch's final snapshot and how its final sheet write went."""

    snapshot: BatchSnapshot
    written: WriteOutcome


@dataclass
class BatchProcessor:
    """Prepares and runs one sheet's batch against the store."""

    store: Store
    sheet: Sheet
    pipeline: Pipeline
    options: RunOptions = field(default_factory=RunOptions)
    services: Mapping[str, Any] = field(default_factory=dict)
    pipeline_ref: str = ""
    # The spec the sheet was opened from (a path or URL), kept with the batch so it can be
    # reopened later (a retry after a restart).
    sheet_spec: str = ""
    on_flush: Callable[[FlushReport], None] | None = None
    owner: str = field(default_factory=new_owner)
    #: What the last `prepare()` made of the sheet's rows.
    selection: Selection = field(default_factory=Selection)
    columns: RunColumns = field(init=False)

    def __post_init__(self) -> None:
        self.columns = RunColumns.resolve(
            list(self.pipeline.output_columns),
            inputs=[self.column_for(name) for name in self.pipeline.inputs],
            mapping=self.options.output_columns,
            overwrite=self.options.overwrite,
        )

    def column_for(self, name: str) -> str:
        """The sheet column that feeds the pipeline input `name`."""
        return self.options.columns.get(name, name)

    def input_columns(self, table: Table) -> dict[str, str]:
        """Pipeline input name -> the sheet column it is read from: the pipeline's declared
        inputs, or (none declared) the whole row: every column the run does not write."""
        if self.pipeline.inputs:
            return {name: self.column_for(name) for name in self.pipeline.inputs}
        written = {normalize_header(column) for column in self.columns.targets.values()}
        return {
            column: column
            for column in table.header
            if column.strip() and normalize_header(column) not in written
        }

    def _check_columns(self, table: Table) -> None:
        for name in self.pipeline.inputs:
            column = self.column_for(name)
            if table.index(column) is None:
                raise MissingColumn(column, self.sheet.name, table.header)

    # ------------------------------------------------------------------ prepare
    def prepare(self, key: str | None = None) -> str:
        """Select rows, assign job ids, and create or resume the batch; its id.

        Nothing is written when the run would write into the operator's values
        (`ForeignValues`), a row's Status or Job ID cell is merged (`MergedTarget`), or no
        row is to be processed (`NothingToDo`). `self.selection` says what became of
        every row.

        `key` is an idempotency key (a schedule's tick): the id a new batch gets. When a
        batch with that id exists already it is returned as it is (the sheet is not read),
        so a caller that retries after a crash never creates a second batch.
        """
        if key is not None and self._exists(key):
            return key
        table = self.sheet.read()
        self._check_columns(table)
        known = self._known_jobs(table)
        check_ownership(table, self.columns, known, self.sheet.name)
        selection = Selection()
        selected, copies = self._select(table, known, selection)
        if not selected:
            raise NothingToDo(self.sheet.name, selection)
        check_merged_targets(table, self.columns, selected, self.sheet.name)
        wanted = self.columns.written
        if any(table.index(c) is None for c in wanted):
            # The rewrite parses the file again: the table as first read is let go before,
            # so a big sheet is held once, not twice.
            del table
            table = self.sheet.ensure_columns(wanted)
            # Read again to add the columns: select on what the sheet holds now.
            selection = Selection()
            selected, copies = self._select(table, known, selection)
        batch_id, keep, settled = self._resumable(table, selected, copies, known)
        Orphans(self.store, self.sheet.name, self.sheet_spec, self.owner).withdraw(
            table, self.columns.job_id, batch_id
        )
        fresh = array("I", (i for i in selected if i not in keep and i not in settled))
        planned = PlannedJobs(table, fresh, self.input_columns(table))
        selection.resumed = len(keep)
        if not planned and not keep:
            # Writing the store's results is all this run has to do: if it fails, say so.
            self._write_settled(settled, selection, required=True)
            raise NothingToDo(self.sheet.name, selection)
        # The jobs are recorded before their ids are written into the sheet: a process that
        # dies in between leaves jobs the next run withdraws, never ids in the sheet that no
        # store knows (which would read as the operator's own values).
        if batch_id is None and key is not None:
            try:
                batch_id = self._record(None, planned, keep, key=key)
            except BatchExists:
                # The same key created at the same moment by another process: that batch.
                return key
        else:
            batch_id = self._record(batch_id, planned, keep)
        try:
            lost = self._assign(table, planned, selection)
        except BaseException:
            self._withdraw(planned.ids(), "its job id could not be written into the sheet")
            raise
        if lost:
            self._withdraw(
                [job_id for job_id in planned.ids() if job_id in lost],
                "its row moved while job ids were written; it waits for the next run",
            )
        selection.queued = len(planned) - len(lost)
        by_row = planned.by_row()
        selection.copies = sum(1 for row in copies if row in by_row and by_row[row] not in lost)
        if selection.queued == 0 and not keep:
            raise NothingToDo(self.sheet.name, selection)
        self._write_settled(settled, selection, required=False)
        return batch_id

    def select(self, table: Table) -> tuple[Sequence[int], Selection]:
        """The rows `prepare` would process in `table` now, and what it would make of the
        others; nothing is written (a schedule's preview and its `no_new_rows` check)."""
        known = self._known_jobs(table)
        selection = Selection()
        selected, _copies = self._select(table, known, selection)
        return selected, selection

    def _exists(self, batch_id: str) -> bool:
        try:
            self.store.batch(batch_id)
        except UnknownBatch:
            return False
        return True

    def _record(
        self,
        batch_id: str | None,
        new_jobs: Sequence[NewJob],
        keep: set[int],
        *,
        key: str | None = None,
    ) -> str:
        if batch_id is None:
            batch_id = self.store.create_batch(
                sheet=self.sheet.name,
                pipeline=self.pipeline_ref or self.pipeline.name,
                phases=[p.name for p in self.pipeline.phases],
                jobs=new_jobs,
                options={
                    "sheet_spec": self.sheet_spec or self.sheet.name,
                    "concurrency": self.options.concurrency,
                    "retry_failed": self.options.retry_failed,
                    "force": self.options.force,
                    "output_columns": dict(self.options.output_columns),
                    "overwrite": list(self.options.overwrite),
                    "prepared_by": self.owner,
                    **(
                        {"notify": self.options.notify.to_json()}
                        if self.options.notify.urls
                        else {}
                    ),
                },
                batch_id=key,
            )
            log.info(
                "batch %s: %s of %s queued", batch_id, rows_text(len(new_jobs)), self.sheet.name
            )
        else:
            self.store.add_jobs(batch_id, new_jobs)
            log.info(
                "batch %s resumed: %s kept, %s added",
                batch_id,
                rows_text(len(keep)),
                rows_text(len(new_jobs)),
            )
        return batch_id

    def _write_settled(
        self, settled: Mapping[int, JobSnapshot], selection: Selection, *, required: bool
    ) -> None:
        """Write the final state of rows finished in the store whose sheet never heard.

        A failed write raises when `required`; otherwise the batch runs and the rows are
        counted in `selection.unwritten_from_store` (the next run writes them).
        """
        if not settled:
            return
        cells = {
            j["job_id"]: row_cells(j, self.pipeline.output_columns, self.columns)
            for j in settled.values()
        }
        try:
            self.sheet.write_by_job_id(cells, job_column=self.columns.job_id)
        except SheetError as exc:
            if required:
                raise
            selection.unwritten_from_store = len(cells)
            log.warning(
                "%s: the finished statuses of %s could not be written (%s); the next run "
                "writes them",
                self.sheet.name,
                rows_text(len(cells)),
                exc,
            )
            return
        selection.written_from_store = len(cells)
        log.info("%s finished in the store written, not redone", rows_text(len(cells)))

    def _select(
        self, table: Table, known: Mapping[str, JobSnapshot], selection: Selection
    ) -> tuple[Sequence[int], set[int]]:
        self.selection = selection
        return select_rows(
            table,
            known,
            self.columns,
            self.input_columns(table),
            selection.skipped,
            retry_failed=self.options.retry_failed,
            force=self.options.force,
        )

    def _known_jobs(self, table: Table) -> dict[str, JobSnapshot]:
        """The store's snapshots of the jobs whose ids are in the sheet's Job ID column."""
        ids = sorted(table.job_rows(self.columns.job_id))
        known: dict[str, JobSnapshot] = {}
        for start in range(0, len(ids), 500):
            for job in self.store.jobs(job_ids=ids[start : start + 500]):
                known[job["job_id"]] = job
        return known

    def _resumable(
        self,
        table: Table,
        selected: Sequence[int],
        copies: set[int],
        known: Mapping[str, JobSnapshot],
    ) -> tuple[str | None, set[int], dict[int, JobSnapshot]]:
        """What the store already knows of the selected rows.

        Returns an interrupted batch of this sheet to resume (or None), the rows whose jobs
        it keeps, and the rows whose jobs already finished in a finished batch (by row).
        Copies of another row's job are new rows.
        """
        if self.options.force or not selected:
            return None, set(), {}
        ids = {table.cell(i, self.columns.job_id).strip(): i for i in selected if i not in copies}
        ids.pop("", None)
        found = [known[job_id] for job_id in ids if job_id in known]
        if not found:
            return None, set(), {}
        by_batch: dict[str, list[JobSnapshot]] = {}
        for job in found:
            by_batch.setdefault(job["batch_id"], []).append(job)
        running = {b for b in by_batch if self.store.batch(b)["status"] is BatchStatus.RUNNING}
        final = {JobStatus.SUCCEEDED}
        if not self.options.retry_failed:
            final.add(JobStatus.FAILED)
        settled = {
            ids[j["job_id"]]: j
            for j in found
            if j["batch_id"] not in running and j["status"] in final
        }
        if not running:
            return None, set(), settled
        batch_id = max(running, key=lambda b: len(by_batch[b]))
        self._refuse_if_busy(batch_id)
        self._refuse_other_columns(batch_id)
        jobs = by_batch[batch_id]
        if self.options.retry_failed:
            failed = [j["job_id"] for j in jobs if j["status"] is JobStatus.FAILED]
            if failed:
                self.store.retry_jobs(batch_id, failed)
        return batch_id, {ids[j["job_id"]] for j in jobs}, settled

    def _refuse_if_busy(self, batch_id: str) -> None:
        now = self.store.clock()
        for owner, expires in self.store.leases(batch_id):
            if owner_alive(owner, me=self.owner) is False or expires < now:
                continue  # a dead worker's job: the pool requeues it
            raise BatchBusy(
                f"{self.sheet.name}: batch {batch_id} is being run by {owner} right now; "
                f"wait for it, or cancel it with `sheetbatch cancel {batch_id}`"
            )

    def _refuse_other_columns(self, batch_id: str) -> None:
        """A resumed batch keeps writing where it started: the same --output-column options."""
        options = self.store.batch(batch_id)["options"]
        check_same_columns(
            options.get("output_columns") or {},
            self.columns,
            list(self.pipeline.output_columns),
            f"{self.sheet.name}: batch {batch_id} of this sheet",
        )

    def _assign(self, table: Table, jobs: PlannedJobs, selection: Selection) -> set[str]:
        """Write each job's id into its row's Job ID cell; the ids that did not land (see
        `assign_ids`). A row that cannot be found again waits for the next run."""
        inputs = list(self.input_columns(table).values())
        lost, moved = assign_ids(self.sheet, table, jobs.by_row(), (*inputs, self.columns.job_id))
        if moved:
            selection.skipped.moved += moved
            log.warning(
                "%s moved while being assigned job ids; they wait for the next run",
                rows_text(moved),
            )
        return lost

    def _withdraw(self, job_ids: Sequence[str], reason: str) -> None:
        """Cancel recorded jobs whose ids never reached the sheet (they never started)."""
        for job_id in job_ids:
            self.store.cancel_job(job_id, reason)

    # ------------------------------------------------------------------ run
    def make_writer(self, batch_id: str) -> SheetWriter:
        """The sheet writer of the batch, writing where `self.columns` says."""
        return SheetWriter(
            store=self.store,
            sheet=self.sheet,
            batch_id=batch_id,
            output_columns=self.pipeline.output_columns,
            columns=self.columns,
            interval=self.options.flush_interval,
            on_flush=self.on_flush,
            owner=self.owner,
            lease_seconds=self.options.lease_seconds,
        )

    def make_pool(self) -> WorkerPool:
        """The worker pool that runs the batch's jobs."""
        runner = JobRunner(
            store=self.store, pipeline=self.pipeline, owner=self.owner, services=self.services
        )
        return WorkerPool(
            store=self.store,
            runner=runner,
            concurrency=self.options.concurrency,
            lease_seconds=self.options.lease_seconds,
            max_attempts=self.options.max_attempts,
        )

    def execute(
        self, batch_id: str, pool: BatchExecutor | None = None, writer: SheetWriter | None = None
    ) -> RunResult:
        """Run the batch's jobs to the end with live sheet writes.

        The result says whether the final statuses reached the sheet.
        """
        writer = writer or self.make_writer(batch_id)
        try:
            writer.flush()
        except Exception as exc:
            log.warning("first sheet flush failed (%s); the writer will retry", exc)
        writer.start()
        try:
            (pool or self.make_pool()).run_batch(batch_id)
        finally:
            written = writer.stop(final_flush=True)
        return RunResult(self.store.batch(batch_id), written)

    def run(self, batch_id: str, pool: BatchExecutor | None = None) -> BatchSnapshot:
        """Run the batch's jobs to the end with live sheet writes; the final batch snapshot."""
        return self.execute(batch_id, pool).snapshot


__all__ = [
    "BatchBusy",
    "BatchProcessor",
    "FlushReport",
    "NothingToDo",
    "RunOptions",
    "RunResult",
    "wants_processing",
]
