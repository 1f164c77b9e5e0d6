"""Phases and pipelines: ordered, named steps of work on one row."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.context import JobContext
from pipeline.errors import TransientError

PhaseFunc = Callable[[JobContext], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Phase:
    """One named step. `run` returns results merged into the job's results.

    `outputs` maps sheet column names to result keys this phase fills; `transient` lists
    the exception types worth retrying (with exponential backoff and jitter) up to `retries`
    times; `timeout` is the phase's deadline in seconds.
    """

    name: str
    run: PhaseFunc
    timeout: float = 60.0
    retries: int = 2
    transient: tuple[type[BaseException], ...] = (TransientError,)
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    """An ordered list of phases plus the input columns it reads.

    `inputs` names the columns a job's inputs come from (each must be in the sheet); empty,
    the default, means the whole row: every column the run does not write itself.
    """

    name: str
    phases: Sequence[Phase]
    inputs: Sequence[str] = ()
    # Input columns a row must have non-empty, or it fails alone with a clear reason.
    required: Sequence[str] = ()

    @property
    def output_columns(self) -> dict[str, str]:
        """Sheet column name -> result key, in phase order."""
        columns: dict[str, str] = {}
        for phase in self.phases:
            columns.update(phase.outputs)
        return columns
