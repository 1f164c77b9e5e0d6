"""Starting a tick's batch in this process: the same code path as `sheetbatch run`.

`InProcessLauncher.launch()` prepares the batch with the tick's idempotency key (the sheet's
rows selected as `run` selects them, job ids written, the batch created or resumed) and runs
it on a background thread; `resume()` runs an existing batch again (a tick whose scheduler
died). `shutdown()` cancels what still runs and waits for the last statuses to be written.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from progress import Store
from progress.errors import ProgressError
from sheetbatch.config import Settings
from sheetbatch.service import PreparedBatch, prepare_batch, services_for

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "scheduler shutting down"


@dataclass(frozen=True)
class LaunchRequest:
    """What a tick launches: the schedule's sheet and pipeline, and the batch id to use."""

    sheet: str
    pipeline: str | None
    retry_failed: bool
    batch_id: str
    notify: tuple[str, ...] = ()


class InProcessLauncher:
    """Runs tick batches on threads of this process (the fetcher shared between them)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._stack = ExitStack()
        self._services: dict[str, Any] | None = None
        self.closing = False

    def _shared_services(self) -> dict[str, Any]:
        with self._lock:
            if self._services is None:
                self._services = self._stack.enter_context(services_for(self.settings))
            return self._services

    def launch(self, request: LaunchRequest) -> str:
        """Prepare the batch (raising what `sheetbatch run` raises) and start it; its id."""
        if self.closing:
            raise RuntimeError("the scheduler is shutting down")
        prepared = prepare_batch(
            self.store,
            self.settings,
            request.sheet,
            self._shared_services(),
            pipeline_ref=request.pipeline,
            retry_failed=request.retry_failed,
            batch_id=request.batch_id,
            notify=request.notify,
        )
        self._start(prepared)
        return prepared.batch_id

    def is_running(self, batch_id: str) -> bool:
        """Whether this process runs the batch now."""
        with self._lock:
            thread = self._threads.get(batch_id)
        return thread is not None and thread.is_alive()

    def running(self) -> list[str]:
        """The batches this process runs now."""
        with self._lock:
            return [b for b, th in self._threads.items() if th.is_alive()]

    def _start(self, prepared: PreparedBatch) -> None:
        with self._lock:
            current = self._threads.get(prepared.batch_id)
            if current is not None and current.is_alive():
                prepared.processor.sheet.close()
                return
            thread = threading.Thread(
                target=self._run,
                args=(prepared,),
                name=f"sheetbatch-tick-batch-{prepared.batch_id}",
                daemon=True,
            )
            self._threads[prepared.batch_id] = thread
        thread.start()

    def _run(self, prepared: PreparedBatch) -> None:
        try:
            final = prepared.run()
            log.info("batch %s finished: %s", prepared.batch_id, final.get("status"))
        except Exception:
            # A loop boundary: the batch keeps its recorded states; the leader resumes it.
            log.exception("batch %s: the run failed", prepared.batch_id)

    def join(self, timeout: float | None = None) -> None:
        """Wait for every batch started so far to end (tests, shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def shutdown(self, timeout: float) -> bool:
        """Cancel the batches still running here and wait up to `timeout` seconds for them;
        True when all ended (their final statuses written to the sheet)."""
        self.closing = True
        for batch_id in self.running():
            try:
                self.store.cancel_batch(batch_id, SHUTDOWN_REASON)
            except ProgressError:
                log.exception("batch %s: could not cancel it for shutdown", batch_id)
        self.join(timeout)
        clean = not self.running()
        self._stack.close()
        return clean
