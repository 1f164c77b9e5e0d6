"""Finding pipelines: built-ins by name, user code by `module:attribute`."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.company import company_pipeline
from pipeline.context import JobContext
from pipeline.errors import PipelineNotFound
from pipeline.phase import Phase, Pipeline

logger = logging.getLogger(__name__)

__all__ = ["BUILTINS", "builtin_names", "load_pipeline", "noop_pipeline"]


def noop_pipeline() -> Pipeline:
    """Four named phases that do no I/O, for benchmarks and smoke runs.

    The row still goes through `parse`, `transform`, `enrich` and `finish`, each reporting
    progress, and ends with `Name`, `Final URL` and `Score` outputs derived from its inputs.
    """

    def parse(ctx: JobContext) -> Mapping[str, Any]:
        ctx.report(1.0, "parsed")
        return {
            "name": (ctx.inputs.get("Company") or "").strip(),
            "final_url": (ctx.inputs.get("Website") or "").strip(),
        }

    def transform(ctx: JobContext) -> Mapping[str, Any]:
        ctx.check()
        ctx.report(1.0, "transformed")
        return {"name": " ".join(str(ctx.results.get("name", "")).split())}

    def enrich(ctx: JobContext) -> Mapping[str, Any]:
        ctx.check()
        seed = f"{ctx.results.get('name')}|{ctx.results.get('final_url')}".encode()
        ctx.report(1.0, "enriched")
        return {"score": zlib.crc32(seed) % 101}

    def finish(ctx: JobContext) -> Mapping[str, Any]:
        ctx.report(1.0, "done")
        return {"finished": True}

    return Pipeline(
        name="noop",
        phases=[
            Phase("parse", parse, timeout=5.0, retries=0, outputs={"Name": "name"}),
            Phase("transform", transform, timeout=5.0, retries=0),
            Phase("enrich", enrich, timeout=5.0, retries=0, outputs={"Score": "score"}),
            Phase("finish", finish, timeout=5.0, retries=0, outputs={"Final URL": "final_url"}),
        ],
        inputs=("Company", "Website"),
        required=(),
    )


BUILTINS: Mapping[str, Callable[[], Pipeline]] = {
    "company": company_pipeline,
    "noop": noop_pipeline,
    "fast": noop_pipeline,
}
"""Built-in pipeline factories by name (`fast` is an alias of `noop`)."""


def builtin_names() -> list[str]:
    """The names `load_pipeline` accepts without a module."""
    return sorted(BUILTINS)


def load_pipeline(name_or_ref: str) -> Pipeline:
    """Return a built-in pipeline by name, or user code's pipeline from `module:attribute`.

    The attribute (dotted paths allowed) may be a `Pipeline` or a zero-argument callable
    returning one. Raises `PipelineNotFound` naming the reference and listing the built-ins.
    """
    ref = name_or_ref.strip()
    if ref in BUILTINS:
        return BUILTINS[ref]()
    choices = f"built-ins: {', '.join(builtin_names())}; or use module:attribute"
    if ":" not in ref:
        raise PipelineNotFound(f"unknown pipeline {ref!r} ({choices})")
    module_name, _, attribute = ref.partition(":")
    if not module_name or not attribute:
        raise PipelineNotFound(f"bad pipeline reference {ref!r} ({choices})")
    # A module beside the sheet is found as `flask --app` or `celery -A` find theirs: the
    # current directory is searched (last, so it never shadows an installed package).
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PipelineNotFound(f"pipeline {ref!r}: cannot import {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PipelineNotFound(
                f"pipeline {ref!r}: {module_name!r} has no attribute {attribute!r} ({choices})"
            ) from None
    if not isinstance(target, Pipeline) and callable(target):
        try:
            target = target()
        except TypeError as exc:
            raise PipelineNotFound(f"pipeline {ref!r}: calling it failed: {exc}") from exc
    if not isinstance(target, Pipeline):
        raise PipelineNotFound(
            f"pipeline {ref!r} is a {type(target).__name__}, not a Pipeline ({choices})"
        )
    logger.debug("loaded pipeline %s from %s", target.name, ref)
    return target
