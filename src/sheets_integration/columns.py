"""The columns a run writes, where they land, and whose values in them are the operator's.

A run writes the bookkeeping columns (Status, Job ID, Updated, Error) and its pipeline's
output columns. `RunColumns` maps each of them to the sheet column it lands in: by default
its own name, elsewhere with `--output-column Name="Found name"`.

sheetbatch knows which cells it wrote: the output and bookkeeping cells of rows whose
Job ID is a job the store knows. Anything else in those columns is the operator's, and
`check_ownership` refuses, before anything is written, a run that would write into a column
holding such values, unless the operator allowed it (`--overwrite COLUMN`). The Status
column is the exception: a Status the operator typed ("do not touch") makes the batch skip
that row, so the row is never written.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sheets_integration.a1 import cell_name
from sheets_integration.errors import BadColumnMapping, ForeignValues, MergedTarget
from sheets_integration.safety import plan_columns
from sheets_integration.sheet import (
    BOOKKEEPING_COLUMNS,
    ERROR_COLUMN,
    JOB_ID_COLUMN,
    STATUS_COLUMN,
    UPDATED_COLUMN,
    Table,
    normalize_header,
)

# The shape of the job ids sheetbatch writes (`progress.store.new_job_id`).
_LOOKS_OURS = re.compile(r"j-[0-9a-f]{16}")


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"


@dataclass(frozen=True)
class RunColumns:
    """Every column a run writes -> the sheet column it lands in, and what may be overwritten.

    `targets` holds the bookkeeping columns first, then the pipeline's outputs, in order.
    `overwrite` holds the (normalised) sheet columns the operator lets the run write into
    although they hold values sheetbatch did not write.
    """

    targets: Mapping[str, str]
    overwrite: frozenset[str] = frozenset()

    @classmethod
    def resolve(
        cls,
        outputs: Sequence[str],
        *,
        inputs: Sequence[str] = (),
        mapping: Mapping[str, str] | None = None,
        overwrite: Collection[str] = (),
    ) -> RunColumns:
        """The columns of a run whose pipeline writes `outputs` and reads `inputs`.

        `mapping` is OUTPUT -> COLUMN (`--output-column`), `overwrite` a list of sheet
        columns (`--overwrite`). Raises `BadColumnMapping` for an output the run does not
        write, a blank column, two outputs in one column, an output in an input column
        (unless that column is in `overwrite`), or an `--overwrite` the run never writes.
        """
        names = [*BOOKKEEPING_COLUMNS, *(o for o in outputs if o not in BOOKKEEPING_COLUMNS)]
        by_key = {normalize_header(name): name for name in names}
        targets = {name: name for name in names}
        known = (
            f"the outputs are {_listing([n for n in names if n not in BOOKKEEPING_COLUMNS])}; "
            f"the bookkeeping columns {', '.join(BOOKKEEPING_COLUMNS)}"
        )
        for output, column in (mapping or {}).items():
            name = by_key.get(normalize_header(output))
            if name is None:
                raise BadColumnMapping(
                    f"--output-column {output}={column}: the run writes no output {output!r} "
                    f"({known})"
                )
            if not column.strip():
                raise BadColumnMapping(f"--output-column {output}=: the column name is blank")
            targets[name] = column.strip()
        seen: dict[str, str] = {}
        for name, column in targets.items():
            key = normalize_header(column)
            if key in seen:
                raise BadColumnMapping(
                    f"{seen[key]!r} and {name!r} would both be written into column {column!r}; "
                    f"map one of them to another column with --output-column"
                )
            seen[key] = name
        allowed: set[str] = set()
        for column in overwrite:
            key = normalize_header(column)
            if key not in seen:
                raise BadColumnMapping(
                    f"--overwrite {column}: the run writes no column {column!r} "
                    f"(it writes {', '.join(targets.values())})"
                )
            allowed.add(key)
        input_keys = {normalize_header(column) for column in inputs}
        for name, column in targets.items():
            key = normalize_header(column)
            if key in input_keys and key not in allowed:
                raise BadColumnMapping(
                    f"{name!r} would be written into {column!r}, a column the pipeline reads "
                    f"its input from; map it to another column with --output-column"
                )
        return cls(targets, frozenset(allowed))

    def column(self, name: str) -> str:
        """The sheet column that the written column `name` lands in."""
        return self.targets.get(name, name)

    @property
    def status(self) -> str:
        """The sheet column of the Status cells."""
        return self.column(STATUS_COLUMN)

    @property
    def job_id(self) -> str:
        """The sheet column of the Job ID cells."""
        return self.column(JOB_ID_COLUMN)

    @property
    def updated(self) -> str:
        """The sheet column of the Updated cells."""
        return self.column(UPDATED_COLUMN)

    @property
    def error(self) -> str:
        """The sheet column of the Error cells."""
        return self.column(ERROR_COLUMN)

    @property
    def outputs(self) -> dict[str, str]:
        """Output name -> sheet column, for the pipeline's outputs only."""
        return {n: c for n, c in self.targets.items() if n not in BOOKKEEPING_COLUMNS}

    @property
    def written(self) -> list[str]:
        """Every sheet column the run writes, bookkeeping first."""
        return list(self.targets.values())

    def may_overwrite(self, column: str) -> bool:
        """Whether the operator allowed writing into `column` although it holds their values."""
        return normalize_header(column) in self.overwrite


def check_ownership(table: Table, columns: RunColumns, ours: Collection[str], sheet: str) -> None:
    """Raise `ForeignValues` for the first written column that holds the operator's values.

    `ours` are the job ids the store knows. A cell is ours when its row's Job ID is one of
    them; a Job ID cell is ours when it holds one of them (or nothing). Status is skipped:
    an operator's Status makes the batch skip the row (see the module docstring).
    """
    job_column = table.index(columns.job_id)
    for name, column in columns.targets.items():
        if name == STATUS_COLUMN or columns.may_overwrite(column):
            continue
        position = table.index(column)
        if position is None:
            continue
        for row, values in enumerate(table.rows):
            value = values[position] if position < len(values) else ""
            if not value.strip():
                continue
            job = ""
            if job_column is not None and job_column < len(values):
                job = values[job_column].strip()
            if job not in ours:
                hint = ""
                if _LOOKS_OURS.fullmatch(job):
                    hint = (
                        f"{job} looks like a sheetbatch job id: if another progress store ran "
                        "this sheet, point --db at it"
                    )
                raise ForeignValues(sheet, table.header[position], name, row + 2, value, hint)


def check_merged_targets(
    table: Table, columns: RunColumns, rows: Collection[int], sheet: str
) -> None:
    """Raise `MergedTarget` when the Status or Job ID cell of one of `rows` is inside a merge.

    Columns not in the header yet are placed where `ensure_columns` would append them.
    """
    if not table.merged:
        return
    planned = {normalize_header(c.text): c.column for c in plan_columns(table, columns.written)}
    for name in (STATUS_COLUMN, JOB_ID_COLUMN):
        column = columns.column(name)
        position = table.index(column)
        if position is None:
            position = planned[normalize_header(column)]
        for row in sorted(rows):
            merged = table.merged.get((row, position))
            if merged is not None:
                raise MergedTarget(sheet, cell_name(row, position), merged, name, row + 2)


def check_same_columns(
    recorded: Mapping[str, str], columns: RunColumns, outputs: Sequence[str], where: str
) -> None:
    """Raise `BadColumnMapping` unless `columns` write where a batch started with the
    `--output-column` mapping `recorded` writes (`where` names the batch, for the message)."""
    started = RunColumns.resolve(outputs, mapping=recorded)
    if started.targets == columns.targets:
        return
    moved = [
        f"{name} into {started.column(name)!r}"
        for name in started.targets
        if started.column(name) != columns.column(name)
    ]
    raise BadColumnMapping(
        f"{where} writes {', '.join(moved)}; run it with the same --output-column options "
        "to resume it (or --force to start a new batch)"
    )
