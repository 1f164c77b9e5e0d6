"""`sheetbatch serve`'s scheduler: a supervised `sheetbatch scheduler` child process.

Why a child and not a greenlet: a scheduler reads sheets (openpyxl parses on the CPU), waits
for SQLite's write lock and runs batches; on the server's gevent loop any of those would
freeze every stream and `/healthz`. In its own process it runs exactly as the foreground
command does (leader lease, standby, kill -9 safety), and the server only supervises it:
restarted with backoff when it dies, stopped with SIGTERM when the server stops.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def scheduler_argv(
    db: str,
    *,
    config_files: Sequence[Path] | None = None,
    verbose: int = 0,
    allow_hosts: Sequence[str] = (),
    shutdown_timeout: float | None = None,
) -> list[str]:
    """The command line of the child scheduler (same store, config and allowed hosts; the
    server's shutdown timeout, so its tick batches stop within the server's)."""
    argv = [sys.executable, "-m", "sheetbatch"]
    for path in config_files or []:
        argv += ["--config", str(path)]
    argv += ["-v"] * verbose
    argv += ["scheduler", "--db", db]
    if shutdown_timeout is not None:
        argv += ["--shutdown-timeout", str(shutdown_timeout)]
    for host in allow_hosts:
        argv += ["--allow-host", host]
    return argv


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the server dies, kill -9 included (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class SchedulerProcess:
    """Runs `argv` and restarts it when it exits, until `stop()`."""

    def __init__(self, argv: Sequence[str], *, max_backoff: float = 30.0) -> None:
        self.argv = list(argv)
        self.max_backoff = max_backoff
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the child and its supervisor."""
        self._thread = threading.Thread(target=self._supervise, name="sheetbatch-scheduler-child")
        self._thread.daemon = True
        self._thread.start()

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self.proc = subprocess.Popen(self.argv, preexec_fn=_die_with_parent)
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            log.error("the scheduler exited with %s; restarting it in %.0f s", code, backoff)
            self._stopping.wait(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    def stop(self, timeout: float) -> bool:
        """SIGTERM the child and wait up to `timeout` seconds; True when it exited cleanly."""
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc is None:
            return True
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the scheduler did not stop within %.0f s; killing it", timeout)
            proc.kill()
            proc.wait(5)
            return False
        if self._thread is not None:
            self._thread.join(5)
        # -SIGTERM: it was still starting (no handler yet), so it had nothing to clean up.
        return code in (0, -signal.SIGTERM)
