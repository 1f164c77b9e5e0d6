"""Which sheets the web service may touch: Google Sheets, and local files only from the
directories the operator allowed (`[server] sheet_dirs`, `serve --sheet-dir DIR`).

A local spec is resolved after symlinks (`Path.resolve`) and must then lie inside one of
those directories (also resolved); anything else is refused with a 403 that names the rule
and says nothing of the file - not whether it exists, not its header - because the check is
made before anything opens it. The worker is then given the resolved path, so what it opens
is what was checked. The CLI does not go through here: an operator at a shell may open
whatever their user can.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sheetbatch.web.errors import Forbidden

log = logging.getLogger(__name__)

LOCAL_SUFFIXES = (".csv", ".tsv", ".xlsx")
MAX_LISTED = 500
_GOOGLE_URL = re.compile(r"^(?:https?://)?docs\.google\.com/spreadsheets/", re.IGNORECASE)
_GOOGLE_KEY = re.compile(r"^[A-Za-z0-9_-]{25,}(?:/.+)?$", re.DOTALL)
_XLSX = re.compile(r"(?P<path>.+?\.xlsx)(?:#(?P<worksheet>.*))?", re.IGNORECASE | re.DOTALL)


def is_google(spec: str) -> bool:
    """A Google Sheets URL, key or key/worksheet, judged from the text alone (no file check:
    that would tell a client whether a path exists)."""
    text = spec.strip()
    if _GOOGLE_URL.match(text):
        return True
    if Path(text.split("/", 1)[0]).suffix.lower() in LOCAL_SUFFIXES:
        return False
    return _GOOGLE_KEY.match(text) is not None and not text.lower().endswith(LOCAL_SUFFIXES)


@dataclass(frozen=True)
class SheetFile:
    """A local sheet the dashboard offers: its path (the spec to send) and where it lies."""

    path: str
    name: str
    directory: str


class SheetPolicy:
    """The rule, configured once per app from the allowed directories."""

    def __init__(self, directories: Sequence[str]) -> None:
        self.directories = tuple(Path(d).expanduser().resolve() for d in directories if d)

    def refusal(self) -> str:
        """The 403's message: the rule, and which directories it allows."""
        if not self.directories:
            return (
                "local sheets are not served: the server allows no sheet directory "
                "([server] sheet_dirs, serve --sheet-dir DIR); use a Google Sheets URL"
            )
        return (
            "local sheets are served only from the directories the server allows "
            f"({', '.join(str(d) for d in self.directories)}; [server] sheet_dirs, "
            "serve --sheet-dir DIR)"
        )

    def admit(self, spec: str) -> str:
        """The spec to open: unchanged for Google; a local one resolved, if allowed.

        Raises Forbidden (field `sheet`) for a local sheet outside the allowed directories.
        """
        if is_google(spec):
            return spec
        text = spec.strip()
        worksheet = None
        match = _XLSX.fullmatch(text)
        if match is not None:
            text, worksheet = match["path"], match["worksheet"]
        try:
            resolved = Path(text).expanduser().resolve()
        except RuntimeError:  # `~nosuchuser/...`: no home directory to expand to
            log.info("refused a local sheet in an unknown home directory")
            raise Forbidden(self.refusal(), field="sheet") from None
        if not any(resolved.is_relative_to(d) and resolved != d for d in self.directories):
            log.info("refused a local sheet outside the allowed directories")
            raise Forbidden(self.refusal(), field="sheet")
        return str(resolved) + (f"#{worksheet}" if worksheet else "")

    def listing(self, depth: int = 3) -> list[SheetFile]:
        """The .csv/.xlsx files in the allowed directories and their subdirectories (down
        to `depth` levels, hidden ones skipped; at most 500), as `admit` would take them."""
        found: list[SheetFile] = []
        for directory in self.directories:
            self._walk(directory, directory, depth, found)
        return found

    def _walk(self, root: Path, folder: Path, depth: int, found: list[SheetFile]) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:
            log.warning("cannot list the sheet directory %s: %s", folder, exc)
            return
        for entry in entries:
            if len(found) >= MAX_LISTED:
                return
            if entry.name.startswith((".", "~$")):
                continue
            try:
                resolved = entry.resolve()
                inside = resolved.is_relative_to(root)  # a symlink out of it is not offered
                if not inside:
                    continue
                if resolved.is_dir():
                    if depth > 1 and not entry.is_symlink():
                        self._walk(root, entry, depth - 1, found)
                    continue
                if entry.suffix.lower() not in LOCAL_SUFFIXES or not resolved.is_file():
                    continue
            except OSError:
                continue
            found.append(SheetFile(str(entry), str(entry.relative_to(root)), str(root)))
