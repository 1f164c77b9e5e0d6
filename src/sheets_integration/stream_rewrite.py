"""`stream_rewrite`: `safety.rewrite_file` for files too big to hold in memory (and
`stream_read`, its reading half).

The edit reads the file as a stream and writes the new content to a temporary file beside
it; the temporary file replaces the original atomically, and only if the original is still
the version that was read (another program's save is never undone: the edit is redone on
the new content). Memory stays what the edit keeps, whatever the file's size.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from sheets_integration.errors import (
    BadSheet,
    SheetLocked,
    SheetNotFound,
    SheetWriteError,
)
from sheets_integration.file_versions import FileVersions, version_of
from sheets_integration.safety import (
    fsync_directory,
    office_lock_file,
    path_lock,
    replacing,
    temp_beside,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: `edit(source, target)` -> (whether it wrote new content into `target`, its result).
StreamEdit = Callable[[BinaryIO, BinaryIO], tuple[bool, T]]


def _open_source(path: Path, sheet: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError as exc:
        raise SheetNotFound(str(path)) from exc
    except IsADirectoryError as exc:
        raise BadSheet(sheet, f"{path} is a directory", "give the path of a file") from exc
    except OSError as exc:
        raise BadSheet(sheet, f"cannot read {path}: {exc.strerror}", "check permissions") from exc


def stream_read(
    path: Path,
    sheet: str,
    read: Callable[[BinaryIO], T],
    *,
    attempts: int = 3,
    versions: FileVersions | None = None,
) -> T:
    """`read(source)` over `path` as one version of the file: a file another program saved
    in place while it was read (a torn read) is read again, up to `attempts` times.
    `versions` is told the version read (as `safety.read_file`'s callers tell it)."""
    for _attempt in range(attempts):
        with _open_source(path, sheet) as source:
            before = os.fstat(source.fileno())
            try:
                result = read(source)
            except OSError as exc:  # the disk, or the temporary file a big sheet's rows go to
                raise BadSheet(
                    sheet,
                    f"reading it failed: {exc}",
                    "check the disk and the temporary directory (TMPDIR) has room",
                ) from exc
            after = os.fstat(source.fileno())
        if versions is not None:
            versions.seen(before)
        if version_of(before) == version_of(after):
            return result
        log.info("%s changed while being read; reading again", sheet)
    raise BadSheet(
        sheet,
        f"the file kept changing while we read it ({attempts} attempts)",
        "pause other programs writing it and try again",
    )


def stream_rewrite(
    path: Path,
    sheet: str,
    edit: StreamEdit[T],
    *,
    respect_lock_files: bool = True,
    attempts: int = 3,
    versions: FileVersions | None = None,
) -> T:
    """Stream `path` through `edit` into a new version that replaces it atomically.

    The same promises as `safety.rewrite_file`: writers in this process are serialised
    per file, a file open in LibreOffice or Office raises `SheetLocked` (with
    `respect_lock_files`), and a file that changed while it was streamed is edited again
    from its new content, up to `attempts` times. When `edit` wrote nothing new, the file
    is left as it is. `versions` is told the version read and the version written.
    """
    target = Path(os.path.realpath(path))
    with path_lock(target):
        for attempt in range(1, attempts + 1):
            lock_file = office_lock_file(target) if respect_lock_files else None
            if lock_file is not None:
                raise SheetLocked(sheet, f"another program (lock file {lock_file.name})")
            with _open_source(target, sheet) as source:
                before = os.fstat(source.fileno())
                if versions is not None:
                    versions.seen(before)
                fd, temp = temp_beside(target, sheet)
                with replacing(temp, sheet):
                    with os.fdopen(fd, "wb") as out:
                        changed, result = edit(source, out)
                        if changed:
                            out.flush()
                            os.fsync(out.fileno())
                            written = os.fstat(out.fileno())
                    if not changed:
                        os.unlink(temp)
                        return result
                    try:
                        now = os.stat(target)
                    except FileNotFoundError as exc:
                        raise SheetNotFound(str(path), "it was deleted while we wrote it") from exc
                    if version_of(before) != version_of(now):
                        log.info(
                            "%s changed while being written (attempt %d); redoing", sheet, attempt
                        )
                        os.unlink(temp)
                        continue
                    os.chmod(temp, stat.S_IMODE(before.st_mode))
                    os.replace(temp, target)
            fsync_directory(target.parent)
            if versions is not None:
                versions.wrote(written)
            return result
    raise SheetWriteError(
        sheet,
        f"the file kept changing while we wrote it ({attempts} attempts)",
        "pause other programs writing it and try again",
    )
