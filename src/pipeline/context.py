"""The per-job context handed to every phase."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import JobCancelled, PhaseTimeout


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that stamps the job id on every line."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        return f"[job {extra.get('job_id')}] {msg}", kwargs


@dataclass
class JobContext:
    """Everything a phase may use: the job's identity, inputs, results so far, and hooks.

    `report(fraction, message)` records progress within the current phase (0.0-1.0);
    `check()` raises `JobCancelled` when the job or batch was cancelled and `PhaseTimeout`
    when the phase is past its deadline, so long phases call it between steps.
    """

    job_id: str
    batch_id: str
    inputs: Mapping[str, str]
    results: dict[str, Any] = field(default_factory=dict)
    reporter: Callable[[float, str], None] = field(default=lambda fraction, message: None)
    cancelled: Callable[[], bool] = field(default=lambda: False)
    deadline: float | None = None
    clock: Callable[[], float] = time.monotonic
    services: Mapping[str, Any] = field(default_factory=dict)
    log: logging.LoggerAdapter[logging.Logger] = field(init=False)

    def __post_init__(self) -> None:
        self.log = JobLogger(logging.getLogger("pipeline.job"), {"job_id": self.job_id})

    def report(self, fraction: float, message: str = "") -> None:
        """Record progress within the current phase; `fraction` is clamped to 0..1."""
        self.reporter(min(1.0, max(0.0, float(fraction))), message)

    def remaining(self, default: float) -> float:
        """Seconds left before the phase deadline, at most `default`; never below 0.05."""
        if self.deadline is None:
            return default
        return max(0.05, min(default, self.deadline - self.clock()))

    def check(self) -> None:
        """Raise if the job was cancelled or the phase ran out of time."""
        if self.cancelled():
            raise JobCancelled(self.job_id)
        if self.deadline is not None and self.clock() > self.deadline:
            raise PhaseTimeout("timed out")
