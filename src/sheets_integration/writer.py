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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from progress import Store
from sheets_integration.sheet import (
    ERROR_COLUMN,
    STATUS_COLUMN,
    UPDATED_COLUMN,
    Sheet,
)

log = logging.getLogger(__name__)


def status_text(job: Mapping[str, Any]) -> str:
    """What the Status cell says for a job snapshot: "processing (2/4 crawl)", "failed: …"."""
    status = job["status"]
    if status == "running":
        phase = job.get("phase")
        if phase:
            return f"processing ({phase['index']}/{phase['count']} {phase['name']})"
        return "processing"
    if status == "succeeded":
        return "completed"
    if status == "failed":
        return f"failed: {job.get('error') or 'unknown error'}"
    return str(status)


def row_cells(job: Mapping[str, Any], output_columns: Mapping[str, str]) -> dict[str, str]:
    """Every cell the writer owns in a job's row, from its snapshot."""
    updated = job.get("updated") or ""
    cells = {
        STATUS_COLUMN: status_text(job),
        UPDATED_COLUMN: updated.replace("T", " ").rstrip("Z")[:19] + (" UTC" if updated else ""),
        ERROR_COLUMN: (job.get("error") or "") if job["status"] == "failed" else "",
    }
    outputs = (job.get("results") or {}).get("outputs") or {}
    if job["status"] == "succeeded":
        for column in output_columns:
            cells[column] = str(outputs.get(column, ""))
    return cells


_WRITE_ROWS = 10_000


def cursor_name(batch_id: str) -> str:
    return f"sheet:{batch_id}"


@dataclass
class FlushReport:
    """What one flush did: rows written, job ids whose rows were gone, the new cursor."""

    rows: int = 0
    missing: frozenset[str] = frozenset()
    cursor: int = 0
    seconds: float = 0.0


@dataclass
class SheetWriter:
    """Writes the batch's job states into `sheet`, following the log from a durable cursor."""

    store: Store
    sheet: Sheet
    batch_id: str
    output_columns: Mapping[str, str]
    interval: float = 2.0
    clock: Callable[[], float] = time.monotonic
    on_flush: Callable[[FlushReport], None] | None = None
    _noted_missing: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    failures: int = 0

    def flush(self, *, full: bool = False) -> FlushReport:
        """Write every row whose job changed since the cursor; advance the cursor on success.

        `full` writes every row of the batch: the final flush reconciles the whole sheet, so
        a status an operator's stale save overwrote mid-run is put back.
        """
        with self._lock:
            started = self.clock()
            name = cursor_name(self.batch_id)
            cursor = self.store.get_cursor(name)
            head = cursor
            changed: set[str] = set()
            while True:
                refs = self.store.event_refs_after(head, batch_id=self.batch_id, limit=5000)
                if not refs:
                    break
                head = refs[-1][0]
                changed.update(job_id for _, job_id in refs if job_id)
                if len(refs) < 5000:
                    break
            if full:
                changed.update(self.store.job_ids(self.batch_id))
            if not changed:
                if head > cursor:
                    self.store.set_cursor(name, head)
                return FlushReport(cursor=head)
            ids = sorted(changed)
            missing: set[str] = set()
            # Very large flushes (the final reconciliation of a big batch) go in pieces, so
            # memory stays flat; a normal flush is one piece, one write.
            for start in range(0, len(ids), _WRITE_ROWS):
                updates: dict[str, dict[str, str]] = {}
                piece = ids[start : start + _WRITE_ROWS]
                for i in range(0, len(piece), 500):
                    for job in self.store.jobs(job_ids=piece[i : i + 500]):
                        updates[job["job_id"]] = row_cells(job, self.output_columns)
                missing |= self.sheet.write_by_job_id(updates).missing
            for job_id in sorted(missing - self._noted_missing):
                self._noted_missing.add(job_id)
                log.warning(
                    "[job %s] its row is no longer in %s; not written", job_id, self.sheet.name
                )
                self.store.note(
                    job_id, "row deleted from the sheet; status not written", sheet=self.sheet.name
                )
            self.store.set_cursor(name, head)
            report = FlushReport(
                rows=len(ids) - len(missing),
                missing=frozenset(missing),
                cursor=head,
                seconds=self.clock() - started,
            )
        if self.on_flush is not None:
            self.on_flush(report)
        return report

    def start(self) -> None:
        """Flush in the background: after new events, at most every `interval` seconds."""
        self._thread = threading.Thread(
            target=self._loop, name="sheetbatch-sheet-writer", daemon=True
        )
        self._thread.start()

    def stop(self, *, final_flush: bool = True) -> None:
        """Stop the background loop, then flush what is left (retrying a failing sheet)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if final_flush:
            for attempt in range(5):
                try:
                    self.flush(full=True)
                    return
                except Exception as exc:
                    log.warning("final sheet flush failed (%s); retrying", exc)
                    time.sleep(min(8.0, 0.5 * 2**attempt))
            log.error(
                "could not write the final statuses to %s; they are kept in the store: "
                "run `sheetbatch run` again to write them",
                self.sheet.name,
            )

    def _loop(self) -> None:
        last = self.store.get_cursor(cursor_name(self.batch_id))
        next_flush = self.clock()
        while not self._stop.is_set():
            head = self.store.wait(last, timeout=min(1.0, self.interval))
            now = self.clock()
            if head <= last or now < next_flush:
                if now < next_flush:
                    self._stop.wait(min(next_flush - now, self.interval))
                continue
            try:
                self.flush()
                last = head
                self.failures = 0
            except Exception as exc:
                # A loop boundary: the cursor did not move, so the next flush writes it all.
                self.failures += 1
                log.warning("sheet flush to %s failed (%s); will retry", self.sheet.name, exc)
            next_flush = self.clock() + self.interval
