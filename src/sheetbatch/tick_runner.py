"""Carrying out one tick: read the sheet, decide, launch its batch; or finish an orphan.

A running tick is executed once by the scheduler that claimed it: one read of the sheet
(`no_new_rows` → skipped, no batch), then the batch is launched with the tick's idempotency
key (`tick_batch_id`). A sheet that cannot be read → failed `sheet_unreachable` with the
reason. A tick whose scheduler died is finished by the next leader: its batch is resumed if
it exists, launched (same key) if the claim is recent enough, failed otherwise: never a
second batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from pipeline.errors import PipelineError
from progress import BatchSnapshot, BatchStatus, Store
from progress.errors import BatchExists, NotLeader, ProgressError, UnknownBatch
from progress.schedule_model import (
    Fence,
    ScheduleRow,
    TickReason,
    TickRow,
    TickState,
    tick_batch_id,
)
from sheetbatch.config import Settings
from sheetbatch.launcher import InProcessLauncher, LaunchRequest
from sheetbatch.service import make_processor, notify_targets, open_sheet
from sheets_integration.errors import BatchBusy, SheetError, SheetLocked, SheetNotFound
from sheets_integration.locate import backend_name
from sheets_integration.selection import NothingToDo, Selection
from sheets_integration.sheet import Sheet, Table

log = logging.getLogger(__name__)


def unreachable(exc: SheetError) -> bool:
    """Whether a sheet error means "could not be read now" (404, 403, 429, 5xx, timeout)."""
    if isinstance(exc, (SheetNotFound, SheetLocked)):
        return True
    from sheets_integration.google_errors import (
        CredentialError,
        GoogleApiError,
        SheetAccessDenied,
        SheetUnavailable,
    )

    return isinstance(exc, (SheetAccessDenied, SheetUnavailable, GoogleApiError, CredentialError))


def select_for(
    store: Store, settings: Settings, sheet: Sheet, table: Table, schedule: ScheduleRow
) -> tuple[Sequence[int], Selection]:
    """The rows a tick of `schedule` would process in `table` now: the very selection
    `sheetbatch run` makes (`BatchProcessor.select`), nothing written."""
    options = schedule.options
    processor = make_processor(
        store,
        settings,
        sheet,
        {},
        sheet_spec=schedule.sheet,
        pipeline_ref=schedule.pipeline or None,
        retry_failed=bool(options.get("retry_failed", False)),
        output_columns=options.get("output_columns") or None,
        overwrite=tuple(options.get("overwrite") or ()),
    )
    return processor.select(table)


class SheetReader:
    """Reads schedules' sheets; a Google sheet stays open between ticks, so a tick with
    nothing to do costs one read request (not a metadata request as well). With a
    PostgreSQL `store`, Google reads draw from the store's shared quota buckets."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store
        self._open: dict[str, Sheet] = {}
        self._lock = threading.Lock()

    def read(self, spec: str) -> tuple[Sheet, Table]:
        """The sheet and its table now; raises SheetError. (A local file's sheet is closed
        again at once: it only names the file.)"""
        if backend_name(spec) != "google":
            local = open_sheet(spec, self.settings)
            try:
                return local, local.read_values()
            finally:
                local.close()
        with self._lock:
            sheet: Sheet | None = self._open.pop(spec) if spec in self._open else None
        try:
            if sheet is None:
                from sheets_integration.quota import RetryPolicy

                policy = RetryPolicy(max_attempts=self.settings.sheet_read_attempts)
                sheet = open_sheet(spec, self.settings, store=self.store, retry=policy)
            table = sheet.read_values()
        except BaseException:
            if sheet is not None:
                sheet.close()
            raise
        with self._lock:
            self._open[spec] = sheet
        return sheet, table

    def close(self) -> None:
        """Close the sheets kept open."""
        with self._lock:
            sheets, self._open = list(self._open.values()), {}
        for sheet in sheets:
            sheet.close()


class TickRunner:
    """Executes ticks for the scheduler `owner` (the leader) with its lease `guard`."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        launcher: InProcessLauncher,
        *,
        owner: str,
        reader: SheetReader | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.launcher = launcher
        self.owner = owner
        self.reader = reader or SheetReader(settings, store)

    def _end(
        self,
        tick: TickRow,
        state: TickState,
        reason: TickReason | None,
        detail: str | None,
        guard: Fence | None,
    ) -> TickRow:
        done = self.store.finish_tick(
            tick.tick_id,
            state,
            reason,
            detail,
            guard=guard,
            pause_after=self.settings.pause_after_failures,
            notify=notify_targets(self.settings),
        )
        log.info(
            "schedule %s: tick %s due %s %s%s",
            tick.schedule_id,
            tick.tick_id,
            tick.to_json()["scheduled_for"],
            state.value,
            f" ({reason.value}: {detail})" if reason else "",
        )
        return done

    def preview(self, schedule: ScheduleRow) -> tuple[Table, Sequence[int]]:
        """The sheet now and the rows a tick would select (nothing is written)."""
        sheet, table = self.reader.read(schedule.sheet)
        rows, _selection = select_for(self.store, self.settings, sheet, table, schedule)
        return table, rows

    def execute(self, tick: TickRow, schedule: ScheduleRow, guard: Fence | None) -> TickRow:
        """Carry out a running tick: skipped, failed, or its batch launched."""
        try:
            _table, rows = self.preview(schedule)
        except SheetError as exc:
            reason = TickReason.SHEET_UNREACHABLE if unreachable(exc) else TickReason.ERROR
            return self._end(tick, TickState.FAILED, reason, str(exc), guard)
        if not rows:
            return self._end(
                tick, TickState.SKIPPED, TickReason.NO_NEW_ROWS, "no new or unfinished rows", guard
            )
        return self._launch(tick, schedule, guard)

    def _launch(self, tick: TickRow, schedule: ScheduleRow, guard: Fence | None) -> TickRow:
        if guard is not None:
            # Fail fast when leadership moved on while the sheet was read.
            self.store.advance_cursor(schedule.schedule_id, schedule.cursor, guard)
        request = LaunchRequest(
            sheet=schedule.sheet,
            pipeline=schedule.pipeline or None,
            retry_failed=bool(schedule.options.get("retry_failed", False)),
            batch_id=tick_batch_id(tick.tick_id),
            notify=tuple(schedule.notify),
        )
        try:
            batch_id = self.launcher.launch(request)
        except BatchBusy as exc:
            return self._end(tick, TickState.SKIPPED, TickReason.OVERLAP, str(exc), guard)
        except NothingToDo as exc:
            # The rows seen at the preview were taken meanwhile (a manual run): no batch.
            return self._end(tick, TickState.SKIPPED, TickReason.NO_NEW_ROWS, str(exc), guard)
        except SheetError as exc:
            reason = TickReason.SHEET_UNREACHABLE if unreachable(exc) else TickReason.ERROR
            return self._end(tick, TickState.FAILED, reason, str(exc), guard)
        except (PipelineError, ValueError, BatchExists) as exc:
            return self._end(tick, TickState.FAILED, TickReason.ERROR, str(exc), guard)
        rows = int(self.store.batch(batch_id)["total"])
        launched = self.store.launch_tick(tick.tick_id, batch_id, rows=rows, guard=guard)
        log.info(
            "schedule %s: tick %s launched batch %s (%d rows)",
            tick.schedule_id,
            tick.tick_id,
            batch_id,
            rows,
        )
        return launched

    def finish_orphan(
        self, tick: TickRow, schedule: ScheduleRow, guard: Fence, *, launch_within: float
    ) -> TickRow:
        """Finish a running tick whose scheduler is gone (this process now leads)."""
        tick = self.store.adopt_tick(tick.tick_id, scheduler=self.owner, guard=guard)
        batch_id = tick.batch_id or tick_batch_id(tick.tick_id)
        try:
            snapshot: BatchSnapshot | None = self.store.batch(batch_id)
        except UnknownBatch:
            snapshot = None
        if snapshot is None:
            if self.store.clock() - tick.scheduled_for > launch_within:
                return self._end(
                    tick,
                    TickState.FAILED,
                    TickReason.ERROR,
                    "the scheduler that claimed it stopped before launching its batch",
                    guard,
                )
            log.warning("tick %s: its scheduler died before launching; launching", tick.tick_id)
            return self.execute(tick, schedule, guard)
        if tick.batch_id is None:
            tick = self.store.launch_tick(
                tick.tick_id, batch_id, rows=int(snapshot["total"]), guard=guard
            )
        if snapshot["status"] is BatchStatus.RUNNING and not self.launcher.is_running(batch_id):
            log.warning(
                "tick %s: resuming batch %s of a scheduler that died", tick.tick_id, batch_id
            )
            request = LaunchRequest(
                sheet=str(snapshot["options"].get("sheet_spec") or schedule.sheet),
                pipeline=str(snapshot["pipeline"]),
                retry_failed=bool(schedule.options.get("retry_failed", False)),
                batch_id=batch_id,
            )
            try:
                self.launcher.launch(request)
            except (SheetError, PipelineError, ProgressError) as exc:
                if isinstance(exc, NotLeader):
                    raise
                log.error("tick %s: cannot resume batch %s: %s", tick.tick_id, batch_id, exc)
        return tick
