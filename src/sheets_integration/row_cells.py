"""What the sheet writer puts into a job's row: its Status text ("processing (2/4 crawl)",
"failed: ..."), its Updated and Error cells and, once it succeeded, its output cells."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from progress import JobSnapshot, JobStatus
from sheets_integration.columns import RunColumns
from sheets_integration.sheet import CellValue, cell_text


def status_text(job: JobSnapshot) -> str:
    """What the Status cell says for a job snapshot: "processing (2/4 crawl)", "failed: …"."""
    status = JobStatus(job["status"])
    if status is JobStatus.RUNNING:
        phase = job["phase"]
        if phase:
            return f"processing ({phase['index']}/{phase['count']} {phase['name']})"
        return "processing"
    if status is JobStatus.SUCCEEDED:
        return "completed"
    if status is JobStatus.FAILED:
        return f"failed: {job['error'] or 'unknown error'}"
    return status.value


def row_cells(
    job: JobSnapshot,
    output_columns: Mapping[str, str],
    columns: RunColumns | None = None,
    *,
    notes: Sequence[str] = (),
) -> dict[str, CellValue]:
    """Every cell the writer owns in a job's row, from its snapshot, keyed by sheet column.

    `output_columns` is the pipeline's (output column -> result key); `columns` maps every
    written column to the sheet column it lands in. A numeric result lands as a number.
    `notes` (cells that could not be written) are added to the Error cell.
    """
    columns = columns or RunColumns.resolve(list(output_columns))
    status = JobStatus(job["status"])
    updated = job["updated"] or ""
    error = (job["error"] or "") if status is JobStatus.FAILED else ""
    cells: dict[str, CellValue] = {
        columns.status: status_text(job),
        columns.updated: updated.replace("T", " ").rstrip("Z")[:19] + (" UTC" if updated else ""),
        columns.error: "; ".join(part for part in (error, *notes) if part),
    }
    results = job["results"] or {}
    outputs = results.get("outputs") or {}
    if status is JobStatus.SUCCEEDED:
        for column, key in output_columns.items():
            cells[columns.column(column)] = _output_value(outputs.get(column, ""), results.get(key))
    return cells


def _output_value(output: object, raw: object) -> CellValue:
    """The number the pipeline produced when the output is that number's text, else text."""
    text = str(output)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return text
    number: int | float = raw
    return number if math.isfinite(number) and cell_text(number) == text else text


__all__ = ["row_cells", "status_text"]
