"""The server's batches, each run by a worker process this runner starts and supervises.

Batch work never runs in the server process: there, a CPU-bound row would hold the event
loop (and the GIL) and freeze every stream and `/healthz`. `submit()` starts a worker
(`python -m sheetbatch.worker`, the same code as `sheetbatch run`) and waits - blocking
only its own greenlet or thread - for the worker's answer: the batch id once prepared, or
the preparation's error (a missing column, a busy sheet), raised here as the same exception
`prepare_batch` raises, so the API answers it synchronously. Then the runner watches the
worker: its flush reports feed /metrics; when it exits it is reaped; a worker that died
(killed, crashed) is restarted up to `max_restarts` times - the new one resumes the batch,
requeuing the dead worker's rows at once because their lease owner's pid is gone; a worker
that ended normally while rows were requeued meanwhile (a retry) is started again.
`shutdown()` cancels every batch through the store's cancel flag, waits for the workers to
record their last transitions and flush their sheets, and kills what did not stop in time
(its leases expire and the next run resumes it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from progress import BatchSnapshot, BatchStatus, JobStatus, Store
from progress.errors import StoreUnavailable
from sheetbatch.config import Settings
from sheetbatch.errors import RunnerClosed as RunnerClosed  # re-exported: its home was here
from sheetbatch.web.offload import offload
from sheetbatch.worker import STOP_REASON, WorkRequest, refused_error, work_request
from sheets_integration.selection import NothingToDo
from sheets_integration.writer import FlushReport

log = logging.getLogger(__name__)

SHUTDOWN_REASON = STOP_REASON
PREPARE_TIMEOUT = 600.0
WORKER = [sys.executable, "-m", "sheetbatch.worker"]


@dataclass(eq=False)
class _Worker:
    """One worker process and what it told us."""

    proc: subprocess.Popen[str]
    request: WorkRequest
    restarts: int = 0
    batch_id: str | None = None
    answer: dict[str, Any] | None = None
    answered: threading.Event = field(default_factory=threading.Event)
    exited: threading.Event = field(default_factory=threading.Event)


class BatchRunner:
    """The batches this server runs, one supervised worker process each."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        on_flush: Callable[[FlushReport], None] | None = None,
        max_restarts: int = 2,
        command: list[str] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._on_flush = on_flush
        self._max_restarts = max_restarts
        self._command = list(command or WORKER)
        # The store the workers open: the one this server uses, password included.
        self._db_url = store.engine.url.render_as_string(hide_password=False)
        self._workers: dict[str, _Worker] = {}  # batch id -> its live worker
        self._starting: set[_Worker] = set()  # started, not yet prepared
        # The spec each batch was submitted with: the store keeps only the sheet's name.
        self._specs: dict[str, str] = {}
        # batch id -> the worker started to take it over (a resume, a retry), until it answers
        self._taking_over: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        # Held while a batch may change hands: a retry requeuing rows of a running batch, and
        # a worker's exit deciding whether another must run what is queued. Without it the
        # exit could look for queued rows just before the retry requeues them, and nobody
        # would run them.
        self._handover = threading.Lock()
        self.closing = False

    # ------------------------------------------------------------------ queries
    def active(self) -> list[str]:
        """Ids of the batches a worker of this server runs now."""
        with self._lock:
            return list(self._workers)

    def is_active(self, batch_id: str) -> bool:
        """Whether a worker of this server runs the batch now (or is starting to)."""
        with self._lock:
            return batch_id in self._workers or batch_id in self._taking_over

    def worker_pid(self, batch_id: str) -> int | None:
        """The pid of the worker running the batch, if any."""
        with self._lock:
            worker = self._workers.get(batch_id)
            return worker.proc.pid if worker is not None else None

    def sheet_spec(self, snapshot: BatchSnapshot) -> str:
        """How to open a batch's sheet again: the spec it was submitted with here, else the
        spec recorded in its options, else its sheet name."""
        batch_id = snapshot["batch_id"]
        options = snapshot["options"]
        return self._specs.get(batch_id) or str(options.get("sheet_spec") or snapshot["sheet"])

    # ------------------------------------------------------------------ actions
    def submit(
        self,
        sheet: str,
        *,
        pipeline: str | None = None,
        retry_failed: bool = False,
        force: bool = False,
        **options: Any,
    ) -> str:
        """Prepare the sheet's batch in a new worker (raising the same errors as
        `prepare_batch`) and leave the worker running it; the batch id.

        `options` go to `prepare_batch` unchanged (JSON values: `output_columns`,
        `overwrite`, `encoding`). A sheet whose batch a worker here already runs with the
        same options gets that batch's id back; a sheet with nothing to do raises
        `NothingToDo` (no batch is recorded). Safe to call from any thread or greenlet; it
        blocks only its caller.
        """
        with self._lock:
            if self.closing:
                raise RunnerClosed("the server is shutting down")
            # The same request again; one with other columns goes to `prepare_batch`, which
            # refuses it (the running batch writes elsewhere, or is busy).
            same = [
                batch_id
                for batch_id, running in self._workers.items()
                if running.request["sheet"] == sheet and running.request["options"] == options
            ]
        for batch_id in [] if force else same:
            # A worker outlives its batch a little (the final flush, leases released): a
            # finished batch is not the answer; the request is prepared afresh.
            if offload(self.store.batch, batch_id)["status"] is BatchStatus.RUNNING:
                return batch_id
        request = work_request(
            self.settings,
            self._db_url,
            sheet,
            pipeline=pipeline,
            retry_failed=retry_failed,
            force=force,
            options=options,
        )
        return self._prepared(self._spawn(request))

    def retry(self, batch_id: str) -> list[str]:
        """Requeue the batch's failed jobs and run them; the requeued job ids.

        Raises UnknownBatch, and SheetError (before changing anything) when the sheet cannot
        be opened. A batch a worker here runs picks the rows up itself; otherwise a new
        worker opens the sheet, requeues the rows and resumes the batch, as
        `sheetbatch run --retry-failed` would.
        """
        with self._lock:
            if self.closing:
                raise RunnerClosed("the server is shutting down")
        snapshot = offload(self.store.batch, batch_id)
        # The batch keeps writing where it was started to (its recorded columns).
        recorded = snapshot["options"]
        request = work_request(
            self.settings,
            self._db_url,
            self.sheet_spec(snapshot),
            pipeline=str(snapshot["pipeline"]),
            retry_failed=True,
            retry_batch=batch_id,
            options={
                "output_columns": recorded.get("output_columns") or {},
                "overwrite": recorded.get("overwrite") or [],
            },
        )
        with self._handover:
            if self.is_active(batch_id):
                # Its worker runs them, or - if it is leaving - its exit sees them queued.
                return list(offload(self.store.retry_batch, batch_id))
            worker = self._take_over(batch_id, request)
        prepared = self._settled(batch_id, worker)
        if prepared != batch_id:
            log.warning("retry of batch %s resumed batch %s of the same sheet", batch_id, prepared)
        assert worker.answer is not None
        return [str(j) for j in worker.answer.get("requeued") or []]

    def shutdown(self, timeout: float) -> bool:
        """Cancel every batch running here and wait up to `timeout` seconds for its worker.

        Returns True when every worker ended (its final statuses flushed to the sheet); one
        still running then is killed (its rows resume on the next run).
        """
        with self._lock:
            self.closing = True
            workers = list(self._workers.items())
            starting = list(self._starting)
        deadline = time.monotonic() + timeout
        for batch_id, _worker in workers:
            try:
                n = offload(self.store.cancel_batch, batch_id, SHUTDOWN_REASON)
                log.info("batch %s: cancelled for shutdown (%d queued rows)", batch_id, n)
            except Exception:
                log.exception("batch %s: could not cancel it for shutdown", batch_id)
        clean = True
        for worker in [w for _, w in workers] + starting:
            if not worker.exited.wait(max(0.0, deadline - time.monotonic())):
                clean = False
                log.error(
                    "batch %s: its worker (pid %d) did not stop within %.0f s; killed it "
                    "(its running rows are requeued when the sheet runs again)",
                    worker.batch_id or "(preparing)",
                    worker.proc.pid,
                    timeout,
                )
                worker.proc.kill()
                worker.exited.wait(5)
        return clean

    # ------------------------------------------------------------------ supervision
    def _spawn(self, request: WorkRequest, restarts: int = 0) -> _Worker:
        proc = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # Its own session: a Ctrl-C on the server's terminal reaches the server, which
            # then stops the workers in order.
            start_new_session=True,
        )
        worker = _Worker(proc=proc, request=request, restarts=restarts)
        with self._lock:
            self._starting.add(worker)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()  # stdin stays open: its EOF tells the worker we are gone
        except OSError:
            log.exception("could not send the batch request to its worker (pid %d)", proc.pid)
        threading.Thread(
            target=self._watch,
            args=(worker, proc.stdout),
            name=f"sheetbatch-worker-{proc.pid}",
            daemon=True,
        ).start()
        return worker

    def _take_over(self, batch_id: str, request: WorkRequest, restarts: int = 0) -> _Worker:
        """A worker started to run `batch_id` next, counted as running it until it answers
        (call under `_handover`, then `_settled`)."""
        worker = self._spawn(request, restarts)
        with self._lock:
            self._taking_over[batch_id] = worker
        return worker

    def _settled(self, batch_id: str, worker: _Worker) -> str:
        """`_prepared` for a worker from `_take_over`; it no longer counts as taking over."""
        try:
            return self._prepared(worker)
        finally:
            with self._lock:
                if self._taking_over.get(batch_id) is worker:
                    del self._taking_over[batch_id]

    def _prepared(self, worker: _Worker) -> str:
        """Wait for the worker's answer; the batch id, or the preparation's error raised."""
        if not worker.answered.wait(PREPARE_TIMEOUT):
            worker.proc.kill()
            raise StoreUnavailable("the batch worker did not answer; see the server log")
        answer = worker.answer or {}
        if answer.get("event") in ("prepared", "retried"):
            return str(answer["batch_id"])
        if answer.get("event") == "refused":
            raise refused_error(answer)
        raise StoreUnavailable(str(answer.get("message") or "the batch worker failed"))

    def _watch(self, worker: _Worker, stdout: IO[str]) -> None:
        try:
            for line in stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    log.warning("worker %d said: %s", worker.proc.pid, line.rstrip()[:200])
                    continue
                self._on_message(worker, message)
        except Exception:
            log.exception("reading worker %d failed", worker.proc.pid)
        finally:
            code = worker.proc.wait()
            for pipe in (worker.proc.stdin, worker.proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            self._reap(worker, code)

    def _on_message(self, worker: _Worker, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "flush" and self._on_flush is not None:
            self._on_flush(
                FlushReport(rows=int(message["rows"]), seconds=float(message["seconds"]))
            )
        elif event == "prepared":
            batch_id = str(message["batch_id"])
            with self._lock:
                self._starting.discard(worker)
                worker.batch_id = batch_id
                self._workers.setdefault(batch_id, worker)
                self._specs[batch_id] = worker.request["sheet"]
                closing = self.closing
            if closing:
                offload(self.store.cancel_batch, batch_id, SHUTDOWN_REASON)
            worker.answer = message
            worker.answered.set()
        elif event in ("refused", "retried"):
            worker.answer = message
            worker.answered.set()

    def _reap(self, worker: _Worker, code: int) -> None:
        with self._handover:
            successor = self._successor(worker, code)
        if successor is not None:
            batch_id, new = successor
            try:
                self._settled(batch_id, new)
            except NothingToDo as exc:
                # The rows were all done before the worker went: nothing is left to run.
                log.info("batch %s: nothing left to resume (%s)", batch_id, exc)
            except Exception as exc:
                log.error("batch %s: could not resume it: %s", batch_id, exc)

    def _successor(self, worker: _Worker, code: int) -> tuple[str, _Worker] | None:
        """Forget the exited worker; the worker started to go on with its batch, if any."""
        with self._lock:
            self._starting.discard(worker)
            batch_id = worker.batch_id
            if batch_id is not None and self._workers.get(batch_id) is worker:
                del self._workers[batch_id]
            closing = self.closing
        if not worker.answered.is_set():
            worker.answer = {"event": "crashed", "message": _exit_text(code, "before preparing")}
            log.error("batch worker %d %s", worker.proc.pid, _exit_text(code, "before preparing"))
            worker.answered.set()
        worker.exited.set()
        if batch_id is None or closing:
            return None
        if code != 0:
            if worker.restarts >= self._max_restarts:
                log.error(
                    "batch %s: its worker (pid %d) %s, restarted %d times already: giving up; "
                    "its rows resume when the sheet runs again",
                    batch_id,
                    worker.proc.pid,
                    _exit_text(code),
                    worker.restarts,
                )
                return None
            log.error(
                "batch %s: its worker (pid %d) %s; starting another to resume it",
                batch_id,
                worker.proc.pid,
                _exit_text(code),
            )
            # The sheet's unfinished rows select the running batch again: it resumes.
            return batch_id, self._resume(worker, worker.restarts + 1, retry_failed=False)
        if offload(self.store.jobs, batch_id=batch_id, statuses=[JobStatus.QUEUED], limit=1):
            # Rows were requeued (a retry) as the worker drained: run them too. Their cells
            # may still say "failed", so they are selected as a retry selects them.
            return batch_id, self._resume(worker, worker.restarts, retry_failed=True)
        return None

    def _resume(self, worker: _Worker, restarts: int, *, retry_failed: bool) -> _Worker:
        assert worker.batch_id is not None
        request = {
            **worker.request,
            "force": False,
            "retry_failed": retry_failed,
            "retry_batch": None,
        }
        return self._take_over(worker.batch_id, request, restarts)


def _exit_text(code: int, when: str = "") -> str:
    what = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    return f"{what} {when}".strip()
