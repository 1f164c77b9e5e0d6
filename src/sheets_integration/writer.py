"""The sheet writer: a reader of the event log that keeps a sheet's status cells current.

It keeps a durable cursor per batch, coalesces the newest state of every row changed since
that cursor, and flushes them in one write at most every `interval` seconds and at the end.
The cursor only moves after a write succeeded, so after a crash or a failed write the same
rows are written again: no status is ever lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from progress import JobSnapshot, Store
from progress.owners import owner_alive
from progress.schedule_model import Fence
from sheets_integration.changed_rows import changed_pieces, written_later
from sheets_integration.columns import RunColumns
from sheets_integration.errors import SheetError, WriterBusy
from sheets_integration.flush_pacing import FlushPacing
from sheets_integration.row_cells import row_cells
from sheets_integration.selection import rows_text
from sheets_integration.sheet import CellValue, Piece, Sheet, TracksEdits, WriteResult, WritesPieces

log = logging.getLogger(__name__)


def cursor_name(batch_id: str) -> str:
    return f"sheet:{batch_id}"


def writer_lease(batch_id: str) -> str:
    """The lease a batch's sheet writer holds: one process writes a batch's sheet at a time."""
    return f"writer:{batch_id}"


@dataclass
class FlushReport:
    """What one flush did: rows written, job ids whose rows were gone, the new cursor.

    `unwritable` maps job ids to the cells of their rows that could not be written.
    """

    rows: int = 0
    missing: frozenset[str] = frozenset()
    cursor: int = 0
    seconds: float = 0.0
    unwritable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteOutcome:
    """How the final write of a batch went.

    `written` is False when the final statuses did not reach the sheet: then `unwritten`
    rows have their final state only in the store (a rerun writes them) and `error` says
    why. `missing` counts rows no longer in the sheet (deleted, or their Job ID changed),
    `partial` rows with cells that could not be written (said in their Error cell).
    """

    written: bool = True
    unwritten: int = 0
    missing: int = 0
    error: str = ""
    #: Rows with cells that could not be written (merged, protected), named in their Error.
    partial: int = 0


def _may_clear(exc: BaseException) -> bool:
    """Whether a failed flush may succeed when tried again with nobody acting."""
    return not isinstance(exc, SheetError) or exc.retry_later


@dataclass
class SheetWriter:
    """Writes the batch's job states into `sheet`, following the log from a durable cursor.

    `columns` says where each written column lands (`--output-column`); `sleep` and
    `retry_delays` pace the final flush's retries (injectable for tests).
    """

    store: Store
    sheet: Sheet
    batch_id: str
    output_columns: Mapping[str, str]
    interval: float = 2.0
    clock: Callable[[], float] = time.monotonic
    on_flush: Callable[[FlushReport], None] | None = None
    columns: RunColumns | None = None
    sleep: Callable[[float], None] = time.sleep
    retry_delays: Sequence[float] = (0.5, 1.0, 2.0, 4.0)
    _noted_missing: set[str] = field(default_factory=set)
    # Cells of a job's row that could not be written: said in its Error cell from then on.
    _unwritable: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    failures: int = 0
    #: With an owner, every flush first takes or renews the batch's writer lease (another
    #: live holder: WriterBusy, nothing written) and moves the cursor fenced by its epoch.
    owner: str | None = None
    lease_seconds: float = 30.0
    #: Rows per piece of a very large flush (the final reconciliation of a big batch): memory
    #: stays flat, and the lease is renewed before each piece.
    write_rows: int = 10_000

    def __post_init__(self) -> None:
        if self.columns is None:
            self.columns = RunColumns.resolve(list(self.output_columns))

    @property
    def _columns(self) -> RunColumns:
        assert self.columns is not None  # set in __post_init__
        return self.columns

    def pending_rows(self) -> int:
        """How many rows have a state in the store that no successful flush wrote yet."""
        cursor = self.store.get_cursor(cursor_name(self.batch_id))
        return self.store.jobs_moved_after(cursor, batch_id=self.batch_id)

    def flush(self, *, full: bool = False) -> FlushReport:
        """Write every row whose job changed since the cursor; advance the cursor on success.

        `full` writes every row of the batch: the final flush reconciles the whole sheet, so
        a status an operator's stale save overwrote mid-run is put back. Rows unchanged since
        their last successful write get their output cells only where those are empty (or
        still hold our value): an operator's later edit of an output cell is kept. A sheet
        this process prepared and nobody else changed since (`TracksEdits`) holds every
        row as written: `full` then writes only the changed rows.
        """
        with self._lock:
            started = self.clock()
            guard = self._lead()
            full = full and self._may_be_stale()
            name = cursor_name(self.batch_id)
            cursor = self.store.get_cursor(name)
            # The log as it is now: events appended while this flush writes are the next's.
            head = self.store.last_event_id()
            missing: set[str] = set()
            unwritable: dict[str, tuple[str, ...]] = {}
            fresh: dict[str, tuple[str, ...]] = {}
            total = 0
            if isinstance(self.sheet, WritesPieces):
                # One pass over the file for every piece (a workbook rewritten whole).
                counted = [0]
                pieces = self._counted(self._pieces(cursor, head, full), guard, counted)
                result = self.sheet.write_pieces(pieces, job_column=self._columns.job_id)
                total = counted[0]
                missing |= self._written(result, unwritable, fresh)
            else:
                for piece, fill_only in self._pieces(cursor, head, full):
                    if total:
                        self._renew(guard)  # each piece under a live lease
                    total += len(piece)
                    missing |= self._write(piece, fill_only, unwritable, fresh)
            if not total and not full:
                if head > cursor:
                    self.store.set_cursor(name, head, guard=guard)
                return FlushReport(cursor=head)
            self._note(missing, fresh)
            # A big flush may outlast the lease: renewed (same holder, same epoch) before
            # the fenced cursor move, which fails only if another writer took over.
            self._renew(guard)
            self.store.set_cursor(name, head, guard=guard)
            report = FlushReport(
                rows=total - len(missing),
                missing=frozenset(missing),
                cursor=head,
                seconds=self.clock() - started,
                unwritable=unwritable,
            )
        if self.on_flush is not None:
            self.on_flush(report)
        return report

    def _pieces(
        self, cursor: int, head: int, full: bool
    ) -> Iterator[tuple[dict[str, dict[str, CellValue]], Sequence[str]]]:
        """The cells to write, a piece at a time, with the columns only filled where empty:
        the rows whose jobs moved in (`cursor`, `head`] whole, then (`full`) every other
        row of the batch, paged from the store, filling its output cells only. Very large
        flushes go in pieces of `write_rows`, so memory stays flat however big the batch.
        """
        piece: dict[str, dict[str, CellValue]] = {}
        for ids, upto in changed_pieces(self.store, self.batch_id, cursor, head, self.write_rows):
            for job, cells in self._rows(ids):
                if written_later(job["last_event_id"], upto, head):
                    continue
                piece[job["job_id"]] = cells
                if len(piece) >= self.write_rows:
                    yield piece, ()
                    piece = {}
        if piece:
            yield piece, ()
        if not full:
            return
        outputs = list(self._columns.outputs.values())
        for page in self.store.job_id_pages(self.batch_id, self.write_rows):
            # A job that moved after the cursor was written whole above (every event of a
            # job moves its last_event_id), or moved after `head`: the next flush's.
            unchanged = {
                job["job_id"]: cells
                for job, cells in self._rows(page)
                if job["last_event_id"] <= cursor
            }
            if unchanged:
                yield unchanged, outputs

    def _may_be_stale(self) -> bool:
        """Whether rows written earlier may no longer show what was written."""
        if not isinstance(self.sheet, TracksEdits) or self.sheet.edited_by_others():
            return True
        # The sheet object saw every write only if this process prepared the batch (a
        # resumed batch's earlier writes were another process's).
        options = self.store.batch(self.batch_id)["options"]
        return self.owner is None or options.get("prepared_by") != self.owner

    def _renew(self, guard: Fence | None) -> None:
        """Renew the lease `guard` was taken with; WriterBusy if someone else took it."""
        if guard is None:
            return
        fence = self._lead()
        if fence is None or fence.epoch != guard.epoch:
            raise WriterBusy(f"{self.sheet.name}: another writer took over this batch's sheet")

    def _lead(self) -> Fence | None:
        """Take or renew the writer lease (when this writer has an owner); its fence."""
        if self.owner is None:
            return None
        name = writer_lease(self.batch_id)
        epoch = self.store.acquire_lease(name, self.owner, self.lease_seconds)
        if epoch is None:
            lease = self.store.lease(name)
            holder = lease.owner if lease is not None else None
            if holder and owner_alive(holder, me=self.owner) is False:
                # Its process is gone (this host): no need to wait out its lease.
                self.store.release_lease(name, holder)
                epoch = self.store.acquire_lease(name, self.owner, self.lease_seconds)
            if epoch is None:
                raise WriterBusy(f"{self.sheet.name}: {holder} writes this batch's sheet now")
        return Fence(name, self.owner, epoch)

    def _rows(self, ids: Sequence[str]) -> Iterator[tuple[JobSnapshot, dict[str, CellValue]]]:
        """Each job of `ids` with the cells of its row.

        A piece holds only the cells: a job's full snapshot (inputs, results) is several
        times its cells, and a piece of a big batch's final flush has 10,000 rows.
        """
        for job in self._jobs(ids):
            notes = self._unwritable.get(job["job_id"], ())
            yield job, row_cells(job, self.output_columns, self._columns, notes=notes)

    def _write(
        self,
        updates: dict[str, dict[str, CellValue]],
        fill_only: Sequence[str],
        unwritable: dict[str, tuple[str, ...]],
        fresh: dict[str, tuple[str, ...]],
    ) -> set[str]:
        """Write the cells of one piece of a flush; the job ids whose rows were not found.

        Cells that could not be written go into `unwritable`, those not seen before into
        `fresh` (and, once, into their row's Error cell).
        """
        result = self.sheet.write_by_job_id(
            updates, job_column=self._columns.job_id, fill_only=fill_only
        )
        return self._written(result, unwritable, fresh)

    def _counted(
        self, pieces: Iterator[Piece], guard: Fence | None, counted: list[int]
    ) -> Iterator[Piece]:
        """`pieces`, counting their rows into `counted[0]`, each after the first read under
        a live lease."""
        for piece in pieces:
            if counted[0]:
                self._renew(guard)
            counted[0] += len(piece[0])
            yield piece

    def _written(
        self,
        result: WriteResult,
        unwritable: dict[str, tuple[str, ...]],
        fresh: dict[str, tuple[str, ...]],
    ) -> set[str]:
        """Note what a write did; the job ids whose rows were not found."""
        columns = self._columns
        missing: set[str] = set(result.missing)
        new = {
            job_id: tuple(reasons)
            for job_id, reasons in result.unwritable.items()
            if tuple(reasons) != self._unwritable.get(job_id)
        }
        unwritable.update(result.unwritable)
        if new:
            self._unwritable.update(new)
            fresh.update(new)
            # Once: say in each such row's Error cell which of its cells did not land
            # (later writes of the row carry it in their Error cell).
            errors = {
                job["job_id"]: {
                    columns.error: row_cells(
                        job, self.output_columns, columns, notes=new[job["job_id"]]
                    )[columns.error]
                }
                for job in self._jobs(list(new))
            }
            self.sheet.write_by_job_id(errors, job_column=columns.job_id)
        return missing

    def _jobs(self, ids: Sequence[str]) -> Iterator[JobSnapshot]:
        """The snapshots of `ids`, read 500 at a time."""
        for i in range(0, len(ids), 500):
            yield from self.store.jobs(job_ids=ids[i : i + 500])

    def _note(self, missing: set[str], unwritable: Mapping[str, tuple[str, ...]]) -> None:
        for job_id in sorted(missing - self._noted_missing):
            self._noted_missing.add(job_id)
            log.warning("[job %s] its row is no longer in %s; not written", job_id, self.sheet.name)
            self.store.note(
                job_id, "row deleted from the sheet; status not written", sheet=self.sheet.name
            )
        for job_id, reasons in sorted(unwritable.items()):
            message = "; ".join(reasons)
            log.info("[job %s] %s: %s", job_id, self.sheet.name, message)
            self.store.note(job_id, message, sheet=self.sheet.name)

    def start(self) -> None:
        """Flush in the background: after new events, at most every `interval` seconds."""
        self._thread = threading.Thread(
            target=self._loop, name="sheetbatch-sheet-writer", daemon=True
        )
        self._thread.start()

    def stop(self, *, final_flush: bool = True) -> WriteOutcome:
        """Stop the background loop, then flush what is left (retrying a failing sheet).

        Returns how the final write went: a caller must not claim the results are in the
        sheet unless `WriteOutcome.written`.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        try:
            return self._finish(final_flush)
        finally:
            if self.owner is not None:
                self.store.release_lease(writer_lease(self.batch_id), self.owner)

    def _finish(self, final_flush: bool) -> WriteOutcome:
        if not final_flush:
            return WriteOutcome(written=False, unwritten=self.pending_rows())
        try:
            report = self._final_flush()
        except RetryError as exhausted:
            return self._not_written(exhausted.last_attempt.exception())
        except SheetError as refused:  # one that waiting would not clear: not retried
            return self._not_written(refused)
        if report.missing and report.rows == 0:
            return WriteOutcome(
                written=False,
                unwritten=len(report.missing),
                missing=len(report.missing),
                error=f"no row of the batch was found in {self.sheet.name} by its "
                f"{self._columns.job_id} (column cleared or renamed?)",
            )
        return WriteOutcome(missing=len(report.missing), partial=len(self._unwritable))

    def _not_written(self, error: BaseException | None) -> WriteOutcome:
        unwritten = self.pending_rows()
        log.error(
            "could not write the final statuses of %s to %s; they are kept in the store: "
            "run `sheetbatch run` again to write them",
            rows_text(unwritten),
            self.sheet.name,
        )
        return WriteOutcome(written=False, unwritten=unwritten, error=str(error))

    def _final_flush(self) -> FlushReport:
        """The full flush, retried after `retry_delays` while it fails; RetryError at last."""
        delays = tuple(self.retry_delays)

        def log_failure(state: RetryCallState) -> None:
            assert state.outcome is not None
            log.warning(
                "final sheet flush to %s failed (%s)", self.sheet.name, state.outcome.exception()
            )

        retrying = Retrying(
            # Nothing is lost by trying again (the cursor only moves after a write
            # succeeded), but a sheet that cannot take the write until someone acts (the
            # worksheet deleted, the Job ID column gone, access revoked) is not asked again.
            retry=retry_if_exception(_may_clear),
            stop=stop_after_attempt(len(delays) + 1),
            # (asked after the last attempt too, before tenacity decides to stop)
            wait=lambda state: (
                delays[state.attempt_number - 1] if state.attempt_number <= len(delays) else 0.0
            ),
            sleep=self.sleep,
            after=log_failure,  # every failure, the last one too
        )
        return retrying(self.flush, full=True)

    def _loop(self) -> None:
        last = self.store.get_cursor(cursor_name(self.batch_id))
        next_flush = self.clock()
        pacing = FlushPacing(self.interval)
        while not self._stop.is_set():
            head = self.store.wait(last, timeout=min(1.0, self.interval))
            now = self.clock()
            if head <= last or now < next_flush:
                if now < next_flush:
                    self._stop.wait(min(next_flush - now, self.interval))
                continue
            pause = self.interval
            try:
                report = self.flush()
                last = head
                self.failures = 0
                pause = pacing.flushed(report.seconds) if report.rows else pacing.pause()
            except WriterBusy as busy:
                log.info("%s; not writing", busy)
            except Exception as exc:
                # A loop boundary: the cursor did not move, so the next flush writes it all.
                self.failures += 1
                log.warning("sheet flush to %s failed (%s); will retry", self.sheet.name, exc)
            next_flush = self.clock() + pause
