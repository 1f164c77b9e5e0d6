"""The server's scheduler child is restarted when it exits: after 1 s, then twice as long each
time up to the cap, each restart logged with the exit code; stopping ends the restarts."""

from __future__ import annotations

import logging
import sys
import threading

import pytest

from sheetbatch.scheduler_process import SchedulerProcess


def test_a_child_that_keeps_exiting_is_restarted_with_growing_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slept: list[float] = []
    five = threading.Event()

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 5:
            five.set()

    child = SchedulerProcess(
        [sys.executable, "-c", "raise SystemExit(3)"], max_backoff=4.0, sleep=sleep
    )
    with caplog.at_level(logging.ERROR, logger="sheetbatch.scheduler_process"):
        child.start()
        assert five.wait(60), "the child was not restarted five times"
        child.stop(10)
    assert slept[:5] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert child.restarts >= 5
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:3] == [
        "the scheduler exited with 3; restarting it in 1 s",
        "the scheduler exited with 3; restarting it in 2 s",
        "the scheduler exited with 3; restarting it in 4 s",
    ]
    restarts = child.restarts
    assert child.proc is not None and child.proc.poll() is not None
    assert child.restarts == restarts  # stopped: no more restarts


def test_stop_ends_the_wait_before_a_restart() -> None:
    child = SchedulerProcess([sys.executable, "-c", "raise SystemExit(1)"], max_backoff=60.0)
    child.start()
    # The default wait is the stop event's: stopping during the 1 s wait ends it at once,
    # and no child is started after it.
    for _ in range(3000):  # a guard, not a timing: the first exit comes at once
        if child.restarts:
            break
        threading.Event().wait(0.01)
    child.stop(10)
    assert child._thread is not None
    child._thread.join(5)
    assert not child._thread.is_alive() and child.restarts == 1
