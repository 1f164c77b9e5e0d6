"""The one way tests make stores, batches and batch processors (real ones, on real sheets)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.phase import Pipeline
from pipeline.registry import load_pipeline
from progress import Store, open_store
from progress.batch_writes import NewJob
from sheets_integration.batch import BatchProcessor, RunOptions
from sheets_integration.sheet import Sheet

PHASES = ("a", "b")


@contextmanager
def local_store(tmp_path: Path, name: str = "progress.db", **kw: Any) -> Iterator[Store]:
    """A store on a fresh SQLite file in `tmp_path` (its feed polling fast), closed after."""
    with open_store(f"sqlite:///{tmp_path / name}", poll_interval=0.02, **kw) as store:
        yield store


def new_jobs(n: int, *, prefix: str = "c", inputs: Mapping[str, str] | None = None) -> list[NewJob]:
    """`n` jobs for sheet rows 2, 3, ...; each labelled `<prefix><i>` with that Company."""
    return [
        NewJob(
            row=i + 2,
            inputs=dict(inputs) if inputs is not None else {"Company": f"{prefix}{i}"},
            label=f"{prefix}{i}",
        )
        for i in range(n)
    ]


def make_batch(
    store: Store,
    n: int = 3,
    *,
    sheet: str = "s.csv",
    pipeline: str = "test",
    phases: Sequence[str] = PHASES,
    prefix: str = "c",
    inputs: Mapping[str, str] | None = None,
    **options: Any,
) -> tuple[str, list[str]]:
    """A batch of `n` queued jobs recorded in the store; (its id, its job ids in row order)."""
    jobs = new_jobs(n, prefix=prefix, inputs=inputs)
    batch_id = store.create_batch(
        sheet=sheet, pipeline=pipeline, phases=list(phases), jobs=jobs, **options
    )
    return batch_id, [job.job_id for job in jobs]


def processor(
    store: Store, sheet: Sheet, pipeline: Pipeline | str = "noop", **options: Any
) -> BatchProcessor:
    """A batch processor of `sheet` with a quick pool and writer (2 rows at a time, 50 ms)."""
    chosen = load_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    defaults: dict[str, Any] = {"concurrency": 2, "flush_interval": 0.05}
    return BatchProcessor(
        store=store, sheet=sheet, pipeline=chosen, options=RunOptions(**{**defaults, **options})
    )
