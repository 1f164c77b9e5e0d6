"""The exception tree of the sheet backends.

Every error a sheet backend raises is a `SheetError`; third-party errors (OSError, csv,
openpyxl, gspread) are translated at the backend boundary with `raise ... from exc`.
Messages are one line and end by saying what the operator can do about it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sheets_integration.sheet import BOOKKEEPING_COLUMNS, normalize_header

# A header can be hundreds of columns wide; a message names enough of them to spot a typo.
_HEADER_NAMES_SHOWN = 30


class SheetError(Exception):
    """Root of every error the sheet backends raise.

    `retry_later` says whether trying the same write again may succeed without anyone
    acting (a locked file, Google unavailable): a writer retries those, and gives up at
    once on the others (the worksheet deleted, the Job ID column gone, access revoked).
    """

    retry_later: bool = False


class BatchBusy(SheetError):
    """Another live process is running this sheet's batch right now."""


class UnsupportedSheet(SheetError):
    """A sheet spec no backend opens (an .ods file, an unknown form) or options that
    contradict it (a worksheet named twice, an encoding for a sheet that has its own)."""


class SheetNotFound(SheetError):
    """The spreadsheet (file, worksheet or Google spreadsheet) does not exist."""

    def __init__(self, what: str, hint: str = "check the path or name") -> None:
        super().__init__(f"sheet not found: {what}; {hint}")
        self.what = what


class BadSheet(SheetError):
    """The spreadsheet exists but cannot be used: malformed file, no header row, bad encoding."""

    def __init__(self, sheet: str, problem: str, hint: str) -> None:
        super().__init__(f"{sheet}: {problem}; {hint}")
        self.sheet = sheet
        self.problem = problem


class MissingColumn(SheetError):
    """A column the batch needs is not in the sheet's header."""

    def __init__(self, column: str, sheet: str, header: Sequence[str]) -> None:
        names = [name for name in header if name.strip()]
        shown = ", ".join(repr(name) for name in names[:_HEADER_NAMES_SHOWN])
        if len(names) > _HEADER_NAMES_SHOWN:
            shown += f", … ({len(names) - _HEADER_NAMES_SHOWN} more)"
        super().__init__(
            f"column {column!r} not found in {sheet} (header: {shown or 'empty'}); "
            "add the column to row 1 or fix its name (case and spaces are ignored)"
        )
        self.column = column
        self.sheet = sheet
        self.header = list(header)


class SheetLocked(SheetError):
    """Another program holds the spreadsheet open or locked; the write was not made.

    Writing anyway would be lost when that program saves, so the caller should retry later.
    """

    retry_later = True

    def __init__(self, sheet: str, holder: str) -> None:
        super().__init__(
            f"{sheet} is locked by {holder}; close it there (or delete a stale lock file)"
        )
        self.sheet = sheet
        self.holder = holder


class SheetWriteError(SheetError):
    """Writing the spreadsheet failed; the file on disk is unchanged (a full disk may clear)."""

    retry_later = True

    def __init__(
        self, sheet: str, problem: str, hint: str = "check the disk and try again"
    ) -> None:
        super().__init__(f"could not write {sheet}: {problem}; {hint}")
        self.sheet = sheet
        self.problem = problem


class BadColumnMapping(SheetError):
    """An `--output-column` or `--overwrite` setting names no column the run writes, or
    would put two of them into one column or into an input column."""


class ForeignValues(SheetError):
    """A column the run would write holds values sheetbatch did not write (the operator's).

    Nothing was written: the operator maps the output elsewhere or allows the overwrite.
    """

    def __init__(
        self, sheet: str, column: str, output: str, row: int, value: str, hint: str = ""
    ) -> None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        super().__init__(
            f"{sheet}: column {column!r} holds values sheetbatch did not write "
            f"(row {row}: {shown!r}); map the output elsewhere with "
            f"--output-column {_shell_word(output)}={_shell_word(suggest_column(output))}, "
            f"or allow it with --overwrite {_shell_word(column)}" + (f" ({hint})" if hint else "")
        )
        self.sheet = sheet
        self.column = column
        self.output = output
        self.row = row
        self.value = value
        self.hint = hint


class MergedTarget(SheetError):
    """A cell the run must write (a row's Status or Job ID) lies inside a merged range."""

    def __init__(self, sheet: str, cell: str, merged: str, name: str, row: int) -> None:
        super().__init__(
            f"{sheet}: cell {cell} is inside merged range {merged}, and row {row}'s {name} "
            f"must be written there; unmerge {merged}, or map {name} to another column with "
            f"--output-column {_shell_word(name)}={_shell_word(suggest_column(name))}"
        )
        self.sheet = sheet
        self.cell = cell
        self.merged = merged
        self.name = name
        self.row = row


def suggest_column(output: str) -> str:
    """A column name to offer for an output that cannot go where it is named:
    "Found name" for the output `Name`, "sheetbatch Status" for the Status column."""
    if normalize_header(output) in {normalize_header(c) for c in BOOKKEEPING_COLUMNS}:
        return f"sheetbatch {output}"
    return f"Found {output.lower()}"


def _shell_word(text: str) -> str:
    """`text` as one word of a shell command line (quoted when it has spaces or quotes)."""
    if text and all(ch.isalnum() or ch in "_-./" for ch in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class WriterBusy(SheetError):
    """Another live process holds this batch's sheet-writer lease: it writes the sheet."""

    retry_later = True  # its lease ends when it stops or dies
