"""`python -m sheetbatch.worker`: one batch, run in its own process for `sheetbatch serve`.

The server never runs batch work on its event loop (a CPU-bound row would freeze every
stream and `/healthz`); it starts one of these per batch, with `subprocess` (a fresh
interpreter, never a fork of the gevent process), and supervises it (`web/runner.py`).
The worker runs the same library code as `sheetbatch run`: `prepare_batch`, then the batch.

Protocol. The server writes ONE JSON line on stdin (`WorkRequest`: the settings, the store
URL, the sheet spec and the run's options) and keeps stdin open; the worker answers JSON
lines on stdout:

- `{"event": "prepared", "batch_id": ..., "requeued": [...]}` once the batch exists, or
  `{"event": "refused", "kind": ..., "message": ..., "args": {...}}` (then exit 2, nothing
  changed): `refused_error` turns it back into the exception `prepare_batch` raised - the
  kinds are those the API answers differently (`nothing_to_do`, the refusals of the run's
  columns, `busy`, `sheet`, `pipeline`, `unavailable`, `invalid`), and `args` carry what
  rebuilds the ones that hold more than a message (a nothing-to-do's selection);
- `{"event": "retried", "batch_id": ..., "requeued": []}` for a retry with no failed row
  (nothing is run, exit 0);
- `{"event": "flush", "rows": n, "seconds": s}` after each sheet flush (for /metrics);
- `{"event": "finished", "batch_id": ..., "status": ..., "sheet_written": {...}}` at the end
  (exit 0); `sheet_written` says whether the final statuses reached the sheet (as
  `sheetbatch run --json` does), and one that did not is logged as an error.

Logs go to stderr (the server's). A retry request (`retry_batch`) first opens the sheet -
so one that cannot be opened changes nothing - then requeues the batch's failed rows and
resumes it. Cancelling goes through the store's cancel flag, as from anywhere else. SIGTERM,
or stdin closing (the server is gone), cancels the batch: running rows stop at their next
phase, statuses are flushed, the worker exits. A worker killed outright leaves leases that
expire (or whose dead pid is noticed) and the batch resumes on the next run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from sheetbatch.config import Settings

log = logging.getLogger("sheetbatch.worker" if __name__ == "__main__" else __name__)

EXIT_REFUSED = 2
STOP_REASON = "server shutting down"
GONE_REASON = "the server stopped"

WorkRequest = dict[str, Any]
"""The JSON object a worker reads: see `work_request`."""


def freeze_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready values, without the secrets (a worker needs neither the API
    token nor the webhook secret: the server sends the notifications)."""
    data = asdict(settings)
    data.pop("api_token", None)
    data.pop("webhook_secret", None)
    return data


def thaw_settings(data: dict[str, Any]) -> Settings:
    """Settings back from `freeze_settings` (JSON lists become the tuples they were)."""
    defaults = Settings()
    known = {f.name for f in fields(Settings)}
    values = {k: _thaw(v, getattr(defaults, k)) for k, v in data.items() if k in known}
    return Settings(**values)


def _thaw(value: Any, default: Any) -> Any:
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def work_request(
    settings: Settings,
    db_url: str,
    sheet: str,
    *,
    pipeline: str | None = None,
    retry_failed: bool = False,
    force: bool = False,
    retry_batch: str | None = None,
    options: dict[str, Any] | None = None,
) -> WorkRequest:
    """What the server sends a worker (see the module docstring)."""
    return {
        "settings": freeze_settings(settings),
        "db": db_url,
        "sheet": sheet,
        "pipeline": pipeline,
        "retry_failed": retry_failed,
        "force": force,
        "retry_batch": retry_batch,
        "options": dict(options or {}),
        # User pipelines (`module:attribute`) import in the worker as they would in the server.
        "sys_path": [p for p in sys.path if p],
        "log_level": logging.getLogger().getEffectiveLevel(),
    }


class _Out:
    """The stdout protocol: one JSON object a line, whole lines only (several threads write)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, **message: Any) -> None:
        line = json.dumps(message, default=str)
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def refusal(exc: BaseException) -> dict[str, Any] | None:
    """The `refused` answer's fields for a preparation error; None when it is a crash."""
    from pipeline.errors import PipelineError
    from progress.errors import ProgressError, StoreUnavailable
    from sheetbatch.errors import SheetbatchError
    from sheets_integration.errors import (
        BadColumnMapping,
        BatchBusy,
        ForeignValues,
        MergedTarget,
        SheetError,
    )
    from sheets_integration.selection import NothingToDo

    message = str(exc)
    args: dict[str, Any]
    if isinstance(exc, NothingToDo):
        args = {"sheet": exc.sheet, "selection": exc.selection.as_json()}
        return {"kind": "nothing_to_do", "message": message, "args": args}
    if isinstance(exc, ForeignValues):
        args = {
            "sheet": exc.sheet,
            "column": exc.column,
            "output": exc.output,
            "row": exc.row,
            "value": exc.value,
            "hint": exc.hint,
        }
        return {"kind": "foreign_values", "message": message, "args": args}
    if isinstance(exc, MergedTarget):
        args = {
            "sheet": exc.sheet,
            "cell": exc.cell,
            "merged": exc.merged,
            "name": exc.name,
            "row": exc.row,
        }
        return {"kind": "merged_target", "message": message, "args": args}
    kinds: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (BadColumnMapping, "column_mapping"),
        (BatchBusy, "busy"),
        (SheetError, "sheet"),
        (PipelineError, "pipeline"),
        ((StoreUnavailable, SheetbatchError), "unavailable"),
        ((ProgressError, ValueError), "invalid"),
    ]
    for types, kind in kinds:
        if isinstance(exc, types):
            return {"kind": kind, "message": message}
    return None


def refused_error(answer: dict[str, Any]) -> Exception:
    """The exception a worker's `refused` answer stands for (the one `prepare_batch` raised
    in the worker), for the server to raise as its own."""
    from pipeline.errors import PipelineError
    from progress.errors import StoreUnavailable
    from sheetbatch.errors import Refused
    from sheets_integration.errors import (
        BadColumnMapping,
        BatchBusy,
        ForeignValues,
        MergedTarget,
        SheetError,
    )
    from sheets_integration.selection import NothingToDo, Selection

    kind = str(answer.get("kind"))
    message = str(answer.get("message") or "refused")
    args = answer.get("args") or {}
    if kind == "nothing_to_do":
        return NothingToDo(str(args["sheet"]), Selection.from_json(args["selection"]))
    if kind == "foreign_values":
        return ForeignValues(**args)
    if kind == "merged_target":
        return MergedTarget(**args)
    simple: dict[str, Callable[[str], Exception]] = {
        "column_mapping": BadColumnMapping,
        "busy": BatchBusy,
        "sheet": SheetError,
        "pipeline": PipelineError,
        "unavailable": StoreUnavailable,
        "invalid": Refused,
    }
    return simple.get(kind, Refused)(message)


def run_work(request: WorkRequest, out: Any) -> int:
    """Prepare and run the requested batch, answering on `out`; the exit code."""
    from progress import open_store
    from sheetbatch.report import written_json
    from sheetbatch.service import open_sheet, prepare_batch, services_for
    from sheets_integration.selection import rows_text
    from sheets_integration.writer import FlushReport

    settings = thaw_settings(request["settings"])
    try:
        # The server's own store: never create one where it has gone missing.
        store = open_store(request["db"], create=False, pool_size=settings.pool_size)
    except Exception as exc:
        out(event="refused", kind="unavailable", message=f"cannot open the progress store: {exc}")
        return EXIT_REFUSED
    try:
        with services_for(settings) as services:
            requeued: list[str] = []
            try:
                retry_of = request.get("retry_batch")
                if retry_of:
                    store.batch(retry_of)  # UnknownBatch: nothing to retry
                    open_sheet(request["sheet"], settings).close()  # cannot open: no change
                    requeued = store.retry_batch(retry_of)
                    if not requeued:
                        out(event="retried", batch_id=retry_of, requeued=[])
                        return 0
                prepared = prepare_batch(
                    store,
                    settings,
                    request["sheet"],
                    services,
                    pipeline_ref=request.get("pipeline"),
                    retry_failed=bool(request.get("retry_failed")),
                    force=bool(request.get("force")),
                    **request.get("options", {}),
                )
            except Exception as exc:
                answer = refusal(exc)
                if answer is None:
                    raise
                out(event="refused", **answer)
                return EXIT_REFUSED
            batch_id = prepared.batch_id

            def report(flush: FlushReport) -> None:
                out(event="flush", rows=flush.rows, seconds=flush.seconds)

            prepared.processor.on_flush = report
            _cancel_on_stop(store, batch_id)
            out(event="prepared", batch_id=batch_id, requeued=requeued)
            result = prepared.execute()
            status = result.snapshot["status"]
            written = result.written
            out(
                event="finished",
                batch_id=batch_id,
                status=status,
                sheet_written=written_json(written),
            )
            if written.written:
                log.info("batch %s finished: %s", batch_id, status)
            else:
                # The batch is over, its rows are in the store; only the sheet lags behind.
                log.error(
                    "batch %s finished (%s), but the final statuses of %s were not "
                    "written to %s: %s; they are kept in the store and the next run of the "
                    "sheet writes them",
                    batch_id,
                    status,
                    rows_text(written.unwritten),
                    request["sheet"],
                    written.error or "the sheet could not be written",
                )
            return 0
    finally:
        store.close()


def _cancel_on_stop(store: Any, batch_id: str) -> None:
    """SIGTERM or the server going away (stdin closes) cancels the batch, once."""
    done = threading.Event()

    def cancel(reason: str) -> None:
        if done.is_set():
            return
        done.set()
        try:
            n = store.cancel_batch(batch_id, reason)
            log.warning("batch %s: cancelled (%s; %d queued rows)", batch_id, reason, n)
        except Exception:
            log.exception("batch %s: could not cancel it", batch_id)

    def on_term(_signum: int, _frame: Any) -> None:
        if done.is_set():
            os._exit(143)  # a second SIGTERM: stop now; leases expire, the batch resumes later
        # Not in the handler itself: the main thread may hold a lock cancel_batch needs.
        threading.Thread(target=cancel, args=(STOP_REASON,), daemon=True).start()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the server closed our pipe or died
        cancel(GONE_REASON)

    signal.signal(signal.SIGTERM, on_term)
    threading.Thread(target=watch_stdin, name="sheetbatch-worker-stdin", daemon=True).start()


def main() -> int:
    """The worker's entry point; the exit code."""
    line = sys.stdin.readline()
    if not line.strip():
        print("sheetbatch.worker: expected a JSON request on stdin", file=sys.stderr)
        return EXIT_REFUSED
    request: WorkRequest = json.loads(line)
    for path in reversed(request.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    logging.basicConfig(
        level=int(request.get("log_level", logging.WARNING)),
        format=f"%(asctime)s %(levelname)s %(name)s[worker {os.getpid()}]: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pipeline.job").setLevel(
        max(int(request.get("log_level", logging.WARNING)), logging.WARNING)
    )
    return run_work(request, _Out())


if __name__ == "__main__":
    sys.exit(main())
