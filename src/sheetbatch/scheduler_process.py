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
from collections.abc import Callable, Sequence
from pathlib import Path

from tenacity import RetryCallState, Retrying, retry_if_result, wait_exponential

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
    """Runs `argv` and restarts it when it exits, until `stop()`: after 1 s, then twice as
    long each time, up to `max_backoff` (`sleep` waits; by default a wait `stop()` ends)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.max_backoff = max_backoff
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sleep = sleep if sleep is not None else self._wait

    def start(self) -> None:
        """Start the child and its supervisor."""
        self._thread = threading.Thread(target=self._supervise, name="sheetbatch-scheduler-child")
        self._thread.daemon = True
        self._thread.start()

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)  # stop() ends it at once

    def _supervise(self) -> None:
        retrying = Retrying(
            # Every exit is worth a restart, until the server stops.
            retry=retry_if_result(lambda _code: not self._stopping.is_set()),
            wait=wait_exponential(multiplier=1.0, max=self.max_backoff),
            sleep=self._sleep,
            before_sleep=self._restarting,
        )
        retrying(self._run_child)

    def _run_child(self) -> int | None:
        """Start the child and wait for its exit code (None: stopping, not started)."""
        with self._lock:
            if self._stopping.is_set():
                return None
            self.proc = subprocess.Popen(self.argv, preexec_fn=_die_with_parent)
        return self.proc.wait()

    def _restarting(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        self.restarts += 1
        log.error(
            "the scheduler exited with %s; restarting it in %.0f s",
            state.outcome.result(),
            state.upcoming_sleep,
        )

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
