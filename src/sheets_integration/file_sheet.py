"""`FileSheet`: what every local-file backend shares.

Each operation re-reads the file, parses it into a document, plans its cells against the
table as it stands now (`safety.plan_*`), applies them and writes the file back atomically
(`safety.rewrite_file`), or leaves it untouched when nothing changed. A backend supplies
only how to parse its bytes into a `Document`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from sheets_integration.a1 import cell_name
from sheets_integration.errors import BadSheet
from sheets_integration.file_versions import FileVersions
from sheets_integration.safety import (
    CellWrite,
    plan_columns,
    plan_job_ids,
    plan_updates,
    read_file,
    rewrite_file,
)
from sheets_integration.sheet import JOB_ID_COLUMN, CellValue, Table, WriteResult

log = logging.getLogger(__name__)

T = TypeVar("T")


class Document(Protocol):
    """A parsed file: its table as it stands, cell writes, and its bytes."""

    @property
    def table(self) -> Table:
        """The header and data rows as text, reflecting every write applied so far."""
        ...

    def apply(self, cells: Sequence[CellWrite]) -> bool:
        """Write the cells (text as literal text, numbers as the backend holds numbers);
        True when anything changed."""
        ...

    def dump(self) -> bytes:
        """The file's new content."""
        ...


class FileSheet:
    """A `Sheet` kept in a local file; subclasses implement `_parse`."""

    def __init__(self, path: str | os.PathLike[str], *, respect_lock_files: bool = True) -> None:
        self.path = Path(path)
        self.respect_lock_files = respect_lock_files
        self.versions = FileVersions()

    def _parse(self, data: bytes) -> Document:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release: every operation opens and closes the file itself."""

    def edited_by_others(self) -> bool:
        """Whether another program may have changed the file since this sheet wrote it
        (the file as it stands now included)."""
        try:
            self.versions.seen(os.stat(self.path))
        except OSError:
            return True
        return self.versions.edited_by_others()

    @property
    def name(self) -> str:
        """The file name, for messages."""
        return self.path.name

    def read(self) -> Table:
        """The header and data rows as the file holds them now."""
        data, stat = read_file(self.path, self.name)
        self.versions.seen(stat)
        return self._document(data).table

    def read_values(self) -> Table:
        """The same as `read`: a local file has nothing cheaper to read."""
        return self.read()

    def _document(self, data: bytes) -> Document:
        """`_parse`, with what a parser raises about the content translated to `BadSheet`."""
        try:
            return self._parse(data)
        except OSError as exc:
            # Parsing reads bytes already in memory: an OSError here is about the content
            # (openpyxl: "File contains no valid workbook part"), not the disk.
            raise BadSheet(
                self.name,
                f"not a readable {self.path.suffix or 'sheet'} file ({exc})",
                "open it in Excel or LibreOffice and save it again",
            ) from exc

    def ensure_columns(self, columns: Sequence[str]) -> Table:
        """Append each of `columns` missing from the header; return the table as written."""

        def edit(document: Document) -> tuple[bool, Table]:
            changed = document.apply(plan_columns(document.table, columns))
            return changed, document.table

        return self._rewrite(edit)

    def assign_job_ids(
        self,
        assignments: Mapping[int, str],
        expected: Mapping[int, Mapping[str, str]],
        *,
        job_column: str = JOB_ID_COLUMN,
    ) -> set[int]:
        """Write job ids into rows still matching `expected`; return the refused row indexes."""
        if not assignments:
            return set()

        def edit(document: Document) -> tuple[bool, set[int]]:
            table = document.table
            plan = plan_job_ids(table, assignments, expected, job_column=job_column)
            # A Job ID cell hidden inside a merged range cannot hold the id: the row is
            # refused rather than recorded as carrying an id it does not show.
            cells, blocked = _writable(plan.cells, table)
            return document.apply(cells), set(plan.refused) | {cell.row for cell, _ in blocked}

        return self._rewrite(edit)

    def write_by_job_id(
        self,
        updates: Mapping[str, Mapping[str, CellValue]],
        *,
        job_column: str = JOB_ID_COLUMN,
        fill_only: Collection[str] = (),
    ) -> WriteResult:
        """Write {column: value} into each job's row as located now; report job ids not found.

        `WriteResult.cells` counts the cells that hold the requested values afterwards
        (including any that already did, which are not rewritten).
        """
        if not updates:
            return WriteResult()

        def edit(document: Document) -> tuple[bool, WriteResult]:
            table = document.table
            plan = plan_updates(
                table, updates, self.name, job_column=job_column, fill_only=fill_only
            )
            cells, blocked = _writable(plan.cells, table)
            changed = document.apply(cells)
            # The plan already leaves out cells it knows are merged; the document may know more.
            unwritable: dict[str, tuple[str, ...]] = dict(plan.unwritable)
            for cell, reason in blocked:
                unwritable[cell.job_id] = (*unwritable.get(cell.job_id, ()), reason)
            return changed, WriteResult(
                cells=len(cells) - len(plan.header_cells),
                missing=plan.missing,
                unwritable=unwritable,
                kept=plan.kept,
            )

        result = self._rewrite(edit)
        log.debug(
            "%s: wrote %d cells, %d jobs missing, %d with unwritable cells",
            self.name,
            result.cells,
            len(result.missing),
            len(result.unwritable),
        )
        return result

    def _rewrite(self, edit: Callable[[Document], tuple[bool, T]]) -> T:
        def on_bytes(data: bytes) -> tuple[bytes | None, T]:
            document = self._document(data)
            changed, result = edit(document)
            return (document.dump() if changed else None), result

        return rewrite_file(
            self.path,
            self.name,
            on_bytes,
            respect_lock_files=self.respect_lock_files,
            versions=self.versions,
        )


def _writable(
    cells: Sequence[CellWrite], table: Table
) -> tuple[list[CellWrite], list[tuple[CellWrite, str]]]:
    """The cells that can be written, and each other one with why not (a merged range)."""
    writable: list[CellWrite] = []
    blocked: list[tuple[CellWrite, str]] = []
    for cell in cells:
        merged = table.merged.get((cell.row, cell.column)) if cell.row >= 0 else None
        if merged is None:
            writable.append(cell)
        else:
            where = cell_name(cell.row, cell.column)
            blocked.append((cell, f"cell {where} is inside merged range {merged}; not written"))
    return writable, blocked
