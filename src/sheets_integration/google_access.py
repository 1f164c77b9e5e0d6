"""Reaching the Sheets API: sheet specs, credentials, and the HTTP client gspread talks through.

A spec is a spreadsheet URL (its `gid` picks the worksheet), a bare key, or `key/worksheet`.
Credentials are a service-account or authorized-user JSON file. `SheetsHTTPClient` is gspread's
HTTP client with the API root made configurable (the local stand-in in tests) and every request
drawn from the credential's shared token buckets (`quota.py`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from google.auth.credentials import Credentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient, ParamsType

from sheets_integration.google_errors import (
    ApiUrlRefused,
    CredentialError,
    GoogleError,
    SheetSpecError,
)
from sheets_integration.quota import (
    AccountQuota,
    Kind,
)

log = logging.getLogger(__name__)

GOOGLE_API_ROOT = "https://sheets.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
DEFAULT_TIMEOUT = 60.0
API_URL_ENV = "SHEETBATCH_SHEETS_API_URL"
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"

_URL = re.compile(
    r"^(?:https?://)?docs\.google\.com/spreadsheets/(?:u/\d+/)?d/(?P<key>[A-Za-z0-9_-]+)"
    r"(?P<rest>[^#]*)(?:#(?P<fragment>.*))?$",
    re.IGNORECASE,
)
_KEY = r"[A-Za-z0-9_-]{25,}"
_KEY_SPEC = re.compile(rf"^(?P<key>{_KEY})(?:/(?P<title>.+))?$", re.DOTALL)
_GID = re.compile(r"(?:^|[?&#])gid=(?P<gid>\d+)")
_SPEC_HELP = (
    "give the sheet's URL (https://docs.google.com/spreadsheets/d/<key>/edit#gid=<gid>), "
    "its key, or <key>/<worksheet title>"
)


# --- SHEET specs ----------------------------------------------------------------------------


def parse_sheet_spec(spec: str) -> tuple[str, int | None, str | None]:
    """(key, gid or None, worksheet title or None) of a Google Sheets URL, key, or key/title.

    A worksheet title is taken as typed, trailing spaces included ("key/Leads " names the
    tab "Leads "). Raises `SheetSpecError` with what to give instead.
    """
    text = spec.strip()
    match = _URL.match(text)
    if match is not None:
        key = match["key"]
        if key in ("e", "E"):
            raise SheetSpecError(
                f"{spec!r} is a published-to-the-web link, which the API cannot open; "
                "copy the URL from the address bar while editing the sheet"
            )
        gid = _GID.search(f"{match['rest']}#{match['fragment'] or ''}")
        return key, int(gid["gid"]) if gid else None, None
    if re.match(r"^(?:https?://)?docs\.google\.com/", text, re.IGNORECASE):
        raise SheetSpecError(f"{spec!r} is not a Google Sheets spreadsheet URL; {_SPEC_HELP}")
    match = _KEY_SPEC.match(spec.lstrip()) or _KEY_SPEC.match(text)
    if match is None:
        raise SheetSpecError(f"{spec!r} is not a Google Sheets URL or key; {_SPEC_HELP}")
    title = match["title"]
    return match["key"], None, (title if title and title.strip() else None)


def looks_like_google(spec: str) -> bool:
    """True for a Google Sheets URL, a bare key or `key/worksheet`, unless it is a local file."""
    text = spec.strip()
    if re.match(r"^(?:https?://)?docs\.google\.com/spreadsheets/", text, re.IGNORECASE):
        return True
    if Path(text).suffix.lower() in (".csv", ".tsv", ".xlsx") or Path(text).exists():
        return False
    return _KEY_SPEC.match(text) is not None


# --- credentials and the HTTP client ---------------------------------------------------------


class _OffGoogleServiceAccountCredentials(service_account.Credentials):
    """Service-account credentials for an API root that is not Google's (an emulator).

    google-auth looks up a "Regional Access Boundary" at iamcredentials.googleapis.com after
    each token refresh; with an emulator that lookup would leave the machine, so skip it.
    """

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return False


def load_credentials(
    path: str | os.PathLike[str], *, google: bool = True
) -> tuple[Credentials, str]:
    """(credentials, account) from a service-account key or an OAuth authorized-user file.

    `account` is the service account's email (or the authorized user's client id): the key
    of the shared quota. `google=False` marks an emulator API root. Raises `CredentialError`.
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialError(
            f"Google credential file not found: {file}; pass --credentials FILE or set "
            f"{CREDENTIALS_ENV}"
        ) from None
    except OSError as exc:
        raise CredentialError(
            f"cannot read Google credential file {file}: {exc.strerror}; check its permissions"
        ) from exc
    try:
        info = json.loads(text)
    except ValueError:
        raise CredentialError(
            f"Google credential file {file} is not JSON; download a service-account key "
            "(JSON) from the Google Cloud console"
        ) from None
    if isinstance(info, dict) and info.keys() & {"installed", "web"} and "type" not in info:
        app = "installed" if "installed" in info else "web"
        raise CredentialError(
            f"Google credential file {file} is an OAuth client ID (the {app!r} application "
            "type), which identifies an app, not an account that can open sheets; create a "
            "service-account key instead (Google Cloud console > IAM & Admin > Service "
            "accounts > Keys > Add key > JSON) and share the sheet with its email, or sign "
            "in with `gcloud auth application-default login` and give the authorized-user "
            "file it writes"
        )
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            cls = service_account.Credentials if google else _OffGoogleServiceAccountCredentials
            creds = cls.from_service_account_info(info, scopes=list(SCOPES))  # type: ignore[no-untyped-call]
            return creds, str(info["client_email"])
        if kind == "authorized_user":
            creds = user_credentials.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
                info, list(SCOPES)
            )
            if info.get("token_uri"):
                # google-auth ignores the file's token_uri for these; an emulator needs it.
                creds = creds.with_token_uri(info["token_uri"])
            return creds, str(info.get("account") or info["client_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialError(
            f"Google credential file {file} is not a usable {kind} file ({exc}); "
            "download a new key from the Google Cloud console"
        ) from exc
    raise CredentialError(
        f"Google credential file {file} has type {kind!r}; expected a service-account key "
        "('service_account') or an OAuth authorized-user file ('authorized_user')"
    )


def api_root(url: str) -> str:
    """The normalised API root ("https://sheets.googleapis.com" or an emulator's URL).

    Plain http is accepted only for loopback hosts: a bearer token must not cross a network
    unencrypted.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiUrlRefused(
            f"Sheets API URL {url!r} is not an http(s) URL; set {API_URL_ENV} right"
        )
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ApiUrlRefused(
            f"Sheets API URL {url!r} uses plain http to a non-loopback host; use https"
        )
    return url.strip().rstrip("/")


_READ_POSTS = (":batchGetByDataFilter", ":getByDataFilter", "/developerMetadata:search")


def request_kind(method: str, url: str) -> Kind:
    """Which quota a request draws from: GETs, by-data-filter reads and metadata searches
    are reads (Google counts them so, though the latter are POSTs); the rest are writes."""
    if method.lower() == "get" or url.split("?", 1)[0].endswith(_READ_POSTS):
        return "read"
    return "write"


class SheetsHTTPClient(HTTPClient):
    """gspread's HTTP client, aimed at a configurable API root, with shared quota buckets.

    gspread imports its URLs by value, so requests are re-rooted here. Every request waits
    for a token of its kind (`request_kind`) and carries the timeout; a 429 pauses the
    bucket. `reserved("write")` takes a write token before a read, so the write that
    follows goes out at once: no quota wait can fall between a read and the write it plans.
    It does not retry: `GoogleSheet` retries whole operations.
    """

    api_root: str = GOOGLE_API_ROOT
    quota: AccountQuota | None = None
    _reserved: dict[Kind, int] | None = None

    @contextlib.contextmanager
    def reserved(self, kind: Kind) -> Iterator[None]:
        """Take one `kind` token now (waiting if need be); the next `kind` request uses it.

        A token still unused when the block ends goes back to the bucket.
        """
        if self.quota is None:
            yield
            return
        self.quota.bucket(kind).acquire()
        reserved = self._reserved = self._reserved or {"read": 0, "write": 0}
        reserved[kind] += 1
        try:
            yield
        finally:
            if reserved[kind] > 0:
                reserved[kind] -= 1
                self.quota.bucket(kind).refund()

    def configure(self, *, root: str, quota: AccountQuota | None, timeout: float) -> None:
        """Set the API root, the buckets and the (connect, read) timeout."""
        self.api_root = root
        self.quota = quota
        self.set_timeout((min(10.0, timeout), timeout))

    def route(self, endpoint: str) -> str:
        """`endpoint` moved under the configured API root."""
        if endpoint.startswith(GOOGLE_API_ROOT + "/"):
            return self.api_root + endpoint[len(GOOGLE_API_ROOT) :]
        if self.api_root != GOOGLE_API_ROOT:
            raise ApiUrlRefused(f"refusing to call {endpoint}: only the Sheets API is re-rooted")
        return endpoint

    def request(
        self,
        method: str,
        endpoint: str,
        params: ParamsType | None = None,
        data: bytes | None = None,
        json: Mapping[str, Any] | None = None,
        files: Any = None,
        headers: Any = None,
    ) -> requests.Response:
        url = self.route(endpoint)
        kind = request_kind(method, url)
        if self._reserved and self._reserved[kind] > 0:
            self._reserved[kind] -= 1
        elif self.quota is not None:
            self.quota.bucket(kind).acquire()
        response = self.session.request(
            method=method,
            url=url,
            json=json,
            params=params,
            data=data,
            files=files,
            headers=headers,
            timeout=self.timeout,
        )
        if response.ok:
            return response
        if self.quota is not None:
            error = GoogleError.from_response(response)
            if error.is_quota:
                self.quota.rate_limited(kind, error.retry_after)
        raise APIError(response)
