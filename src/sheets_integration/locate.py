"""`open_sheet`: the one place where a sheet spec (a path or a URL) becomes a `Sheet`.

Specs:
- `companies.csv` (also `.tsv`) -> `CsvSheet`; options: `encoding`, `respect_lock_files`.
- `companies.xlsx` or `companies.xlsx#Worksheet` -> `XlsxSheet`; options: `worksheet`,
  `respect_lock_files`. The worksheet follows `#` rather than `:` because `:` is part of
  Windows paths (`C:\\data\\companies.xlsx`) and `#` reads like a URL fragment.
- a Google Sheets URL or key -> the Google backend, once registered:

      register_backend("google", looks_like_google, GoogleSheet.open)

Backends are tried in order, most recently registered first; the first whose predicate
accepts the spec opens it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sheets_integration.csv_sheet import CsvSheet
from sheets_integration.errors import BadSheet, SheetNotFound, UnsupportedSheet
from sheets_integration.sheet import Sheet
from sheets_integration.xlsx_sheet import XlsxSheet

SheetFactory = Callable[..., Sheet]
"""Opens a spec: `factory(spec, **options) -> Sheet`."""

_XLSX_SPEC = re.compile(r"(?P<path>.+?\.xlsx)(?:#(?P<worksheet>.*))?", re.IGNORECASE | re.DOTALL)
_CSV_SUFFIXES = frozenset({".csv", ".tsv"})
_CONVERTIBLE_SUFFIXES = frozenset({".xls", ".xlsm", ".xlsb", ".ods", ".numbers"})


@dataclass(frozen=True)
class Backend:
    """A kind of sheet `open_sheet` can open: a name, a spec predicate and a factory."""

    name: str
    matches: Callable[[str], bool]
    open: SheetFactory


_backends: list[Backend] = []


def register_backend(name: str, matches: Callable[[str], bool], factory: SheetFactory) -> None:
    """Make `open_sheet` try this backend first, replacing any backend of the same name."""
    _backends[:] = [Backend(name, matches, factory)] + [b for b in _backends if b.name != name]


def backends() -> list[Backend]:
    """The registered backends, in the order `open_sheet` tries them."""
    return list(_backends)


def backend_name(spec: str) -> str | None:
    """The name of the backend that opens `spec` ("csv", "xlsx", "google"), or None."""
    return next((b.name for b in _backends if b.matches(spec)), None)


def open_sheet(spec: str, **options: Any) -> Sheet:
    """The `Sheet` for `spec`, opened by the first backend that accepts it.

    Raises `SheetNotFound` for a local file that does not exist and `UnsupportedSheet` for a
    spec no backend accepts. Options go to the backend's constructor.
    """
    for backend in _backends:
        if backend.matches(spec):
            return backend.open(spec, **options)
    suffix = Path(spec).suffix.lower()
    if suffix in _CONVERTIBLE_SUFFIXES:
        raise UnsupportedSheet(
            f"{spec}: {suffix} files are not supported; save it as .xlsx or .csv"
        )
    raise UnsupportedSheet(
        f"cannot tell what kind of sheet {spec!r} is; give a .csv or .xlsx path "
        "(a worksheet as file.xlsx#Worksheet) or a Google Sheets URL"
    )


def is_google_spec(spec: str) -> bool:
    """True for a Google Sheets URL, a bare key or `key/worksheet` (not a local file)."""
    # Imported on use: gspread and google-auth cost start-up time local sheets never need.
    from sheets_integration.google_access import looks_like_google

    return looks_like_google(spec)


def split_xlsx_spec(spec: str) -> tuple[Path, str | None] | None:
    """(path, worksheet or None) for `file.xlsx` or `file.xlsx#Worksheet`; None otherwise."""
    match = _XLSX_SPEC.fullmatch(spec)
    if match is None:
        return None
    return Path(match["path"]).expanduser(), (match["worksheet"] or None)


def _existing_file(path: Path) -> Path:
    if not path.exists():
        raise SheetNotFound(str(path), f"check the path (relative paths start at {Path.cwd()})")
    if not path.is_file():
        raise BadSheet(str(path), "not a regular file", "give the path of a .csv or .xlsx file")
    return path


def _is_csv(spec: str) -> bool:
    return Path(spec).suffix.lower() in _CSV_SUFFIXES


def _open_csv(spec: str, **options: Any) -> Sheet:
    return CsvSheet(_existing_file(Path(spec).expanduser()), **options)


def _open_xlsx(spec: str, **options: Any) -> Sheet:
    split = split_xlsx_spec(spec)
    assert split is not None  # guaranteed by the predicate
    path, worksheet = split
    if worksheet is not None:
        named = options.pop("worksheet", None)
        if named is not None and named != worksheet:
            raise UnsupportedSheet(
                f"{spec} names worksheet {worksheet!r} but the options name {named!r}; name it once"
            )
        options["worksheet"] = worksheet
    return XlsxSheet(_existing_file(path), **options)


def _open_google(spec: str, **options: Any) -> Sheet:
    # Imported on use: gspread and google-auth cost start-up time that local sheets never need.
    from sheets_integration.google_sheet import GoogleSheet

    return GoogleSheet.open(spec, **options)


# Tried last-registered first: local files are recognised before Google is even imported.
register_backend("google", is_google_spec, _open_google)
register_backend("csv", _is_csv, _open_csv)
register_backend("xlsx", lambda spec: split_xlsx_spec(spec) is not None, _open_xlsx)
