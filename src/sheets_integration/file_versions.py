"""`FileVersions`: whether anyone but this process changed a local sheet file since it wrote it.

A file's version is its (inode, size, modification time): an atomic replace gives it a new
inode, a program saving in place a new modification time. The sheet writer asks at the end
of a batch: a file nobody else touched holds every row as the writer left it, so the final
flush writes only the rows that changed since the last flush; a file someone else saved
(perhaps an old copy over our statuses) gets every row of the batch reconciled.
"""

from __future__ import annotations

import os
import threading


def version_of(stat: os.stat_result) -> tuple[int, int, int]:
    """The parts of a stat that change whenever the file's content may have changed."""
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class FileVersions:
    """The versions of one file this process read and wrote, in order.

    `seen` is told the version of every read, `wrote` the version of every file this
    process put in place. A read that finds another version than the last one known means
    another program saved the file: from then on `edited_by_others` is True.
    """

    def __init__(self) -> None:
        self._last: tuple[int, int, int] | None = None
        self._wrote = False
        self._others = False
        self._lock = threading.Lock()

    def seen(self, stat: os.stat_result) -> None:
        """A read found the file at this version."""
        version = version_of(stat)
        with self._lock:
            if self._last is not None and version != self._last:
                self._others = True
            self._last = version

    def wrote(self, stat: os.stat_result) -> None:
        """This process replaced the file by the version `stat` describes."""
        with self._lock:
            self._last = version_of(stat)
            self._wrote = True

    def edited_by_others(self) -> bool:
        """True unless this process wrote the file and every read since found its own
        version (a file it never wrote counts as edited: nothing is known of it)."""
        with self._lock:
            return self._others or not self._wrote
