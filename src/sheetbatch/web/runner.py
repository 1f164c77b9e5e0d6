"""Running submitted batches inside the server process, with the same code as `sheetbatch run`.

`submit()` prepares the batch synchronously (so a missing sheet or an unknown pipeline is
the request's answer) and runs it in the background; `shutdown()` cancels what still runs and
waits for the workers to record their last transition and the sheet writer to flush.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from progress import Store
from sheetbatch.config import Settings
from sheetbatch.service import PreparedBatch, open_sheet, prepare_batch, services_for
from sheets_integration.writer import FlushReport

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "server shutting down"


class RunnerClosed(Exception):
    """The runner is shutting down and takes no new batch."""


class BatchRunner:
    """The batches this process runs, each on its own background thread."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        on_flush: Callable[[FlushReport], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._on_flush = on_flush
        self._threads: dict[str, threading.Thread] = {}
        # The spec each batch was submitted with: the store keeps only the sheet's name.
        self._specs: dict[str, str] = {}
        self._lock = threading.Lock()
        self._prepare_lock = threading.Lock()
        self._stack = ExitStack()
        self._services: dict[str, Any] | None = None
        self.closing = False

    def _shared_services(self) -> dict[str, Any]:
        if self._services is None:
            self._services = self._stack.enter_context(services_for(self.settings))
        return self._services

    def active(self) -> list[str]:
        """Ids of the batches running in this process now."""
        with self._lock:
            return list(self._threads)

    def is_active(self, batch_id: str) -> bool:
        """Whether this process is running the batch now."""
        with self._lock:
            return batch_id in self._threads

    def submit(
        self,
        sheet: str,
        *,
        pipeline: str | None = None,
        retry_failed: bool = False,
        force: bool = False,
        output_columns: Mapping[str, str] | None = None,
        overwrite: Sequence[str] = (),
    ) -> str:
        """Prepare the sheet's batch (raising the same errors as `sheetbatch run`) and start it.

        A sheet whose batch this process already runs gets that batch's id back; a sheet
        with nothing to do raises `NothingToDo` (no batch is recorded).
        """
        with self._prepare_lock:
            if self.closing:
                raise RunnerClosed("the server is shutting down")
            prepared = prepare_batch(
                self.store,
                self.settings,
                sheet,
                self._shared_services(),
                pipeline_ref=pipeline,
                retry_failed=retry_failed,
                force=force,
                output_columns=output_columns,
                overwrite=overwrite,
            )
            self._specs[prepared.batch_id] = sheet
            self._start(prepared)
        return prepared.batch_id

    def sheet_spec(self, snapshot: dict[str, Any]) -> str:
        """How to open a batch's sheet again: the spec it was submitted with here, else the
        spec recorded in its options, else its sheet name."""
        batch_id = str(snapshot["batch_id"])
        options = snapshot.get("options") or {}
        return self._specs.get(batch_id) or str(options.get("sheet_spec") or snapshot["sheet"])

    def retry(self, batch_id: str) -> list[str]:
        """Requeue the batch's failed jobs and run them; the requeued job ids.

        Raises UnknownBatch, and SheetError (before changing anything) when the sheet cannot
        be opened. The batch reopens; if this process is not running it, its sheet is opened
        again and the batch resumed, as `sheetbatch run --retry-failed` would.
        """
        with self._prepare_lock:
            if self.closing:
                raise RunnerClosed("the server is shutting down")
            snapshot = self.store.batch(batch_id)
            spec = self.sheet_spec(snapshot)
            if not self.is_active(batch_id):
                open_sheet(spec, self.settings)  # a sheet that cannot be opened: no change made
            # Under the lock a batch thread takes to leave: either it sees these rows queued
            # and runs them, or it has left and a new run starts below.
            with self._lock:
                requeued = self.store.retry_batch(batch_id)
                active = batch_id in self._threads
            if requeued and not active:
                # The batch keeps writing where it was started to (its recorded columns).
                options = snapshot.get("options") or {}
                prepared = prepare_batch(
                    self.store,
                    self.settings,
                    spec,
                    self._shared_services(),
                    pipeline_ref=str(snapshot["pipeline"]),
                    retry_failed=True,
                    output_columns=options.get("output_columns"),
                    overwrite=options.get("overwrite") or (),
                )
                if prepared.batch_id != batch_id:
                    log.warning(
                        "retry of batch %s resumed batch %s of the same sheet",
                        batch_id,
                        prepared.batch_id,
                    )
                self._start(prepared)
        return requeued

    def _start(self, prepared: PreparedBatch) -> None:
        batch_id = prepared.batch_id
        if self._on_flush is not None:
            # The sheet writer reports each flush (for /metrics).
            prepared.processor.on_flush = self._on_flush
        with self._lock:
            if batch_id in self._threads:
                log.info("batch %s is already running in this process", batch_id)
                return
            thread = threading.Thread(
                target=self._run,
                args=(prepared,),
                name=f"sheetbatch-batch-{batch_id}",
                daemon=True,
            )
            self._threads[batch_id] = thread
        thread.start()

    def _run(self, prepared: PreparedBatch) -> None:
        batch_id = prepared.batch_id
        try:
            while True:
                final = prepared.run()
                with self._lock:
                    # A retry that requeued rows just as the workers drained: run them too.
                    if self.closing or not self.store.jobs(
                        batch_id=batch_id, statuses=["queued"], limit=1
                    ):
                        self._threads.pop(batch_id, None)
                        break
            log.info("batch %s finished: %s", batch_id, final.get("status"))
        except Exception:
            # A loop boundary: the batch's jobs keep their recorded states (leases expire
            # and the next run resumes them); the failure is logged, never reported as done.
            log.exception("batch %s: the run failed", batch_id)
        finally:
            with self._lock:
                self._threads.pop(batch_id, None)

    def shutdown(self, timeout: float) -> bool:
        """Cancel every batch still running here and wait up to `timeout` seconds for them.

        Returns True when every batch ended (its final statuses flushed to the sheet).
        """
        with self._prepare_lock:
            self.closing = True
        deadline = time.monotonic() + timeout
        for batch_id in self.active():
            try:
                n = self.store.cancel_batch(batch_id, SHUTDOWN_REASON)
                log.info("batch %s: cancelled for shutdown (%d queued rows)", batch_id, n)
            except Exception:
                log.exception("batch %s: could not cancel it for shutdown", batch_id)
        with self._lock:
            threads = list(self._threads.items())
        clean = True
        for batch_id, thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                clean = False
                log.error(
                    "batch %s did not stop within %.0f s; its running rows are requeued "
                    "when their leases expire (run the sheet again to resume)",
                    batch_id,
                    timeout,
                )
        self._stack.close()
        return clean
