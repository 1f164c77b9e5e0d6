"""Google Sheets test support: a running stand-in, service-account key files, gspread clients.

Import the fixtures into a test module with `from tests.support.google import *`. Every
fixture here keeps traffic on the loopback interface: `loopback_only` fails a test whose
code (or a library's background thread) tried to resolve any other host.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gspread
import pytest
from google.oauth2 import service_account
from gspread.http_client import HTTPClient, ParamsType
from requests import Response

from gsheets_standin import ManualClock, ServiceAccountKey, StandIn, generate_service_account_key
from sheets_integration.google_sheet import GoogleSheet
from sheets_integration.quota import QuotaRegistry

__all__ = [
    "SCOPES",
    "gc",
    "google_sheet",
    "google_sheet_factory",
    "gspread_client",
    "key_file",
    "loopback_only",
    "quota_registry",
    "service_account_key",
    "session_service_account_key",
    "standin",
    "standin_clock",
]

SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse name lookups of non-loopback hosts; the test fails if any was attempted."""
    attempted: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK:
            attempted.append(name)
            raise OSError(f"test guard: refused to resolve non-loopback host {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield attempted
    assert attempted == [], f"the test tried to reach non-loopback hosts: {attempted}"


@pytest.fixture(scope="session")
def session_service_account_key() -> ServiceAccountKey:
    """One RSA key per session (generation costs ~0.1 s), re-pointed at each stand-in."""
    return generate_service_account_key(
        "sheetbatch-test@standin-project.iam.gserviceaccount.com", "http://127.0.0.1:9/token"
    )


@pytest.fixture
def standin_clock() -> ManualClock:
    """The stand-in's quota clock (and the client's, where a test injects it)."""
    return ManualClock()


@pytest.fixture
def standin(standin_clock: ManualClock) -> Iterator[StandIn]:
    """A running stand-in on 127.0.0.1 with Google's default quotas on `standin_clock`."""
    with StandIn(clock=standin_clock) as server:
        yield server


@pytest.fixture
def service_account_key(
    standin: StandIn, session_service_account_key: ServiceAccountKey
) -> ServiceAccountKey:
    """A service-account key registered with `standin` (its token_uri points there)."""
    return standin.register_service_account(session_service_account_key)


@pytest.fixture
def key_file(tmp_path: Path, service_account_key: ServiceAccountKey) -> Path:
    """The service-account key as a JSON file, as a user would download it."""
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(service_account_key.info))
    return path


class _LocalCredentials(service_account.Credentials):
    # google-auth looks up a "Regional Access Boundary" at iamcredentials.googleapis.com
    # after each refresh; against the stand-in that lookup must not happen.
    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return False


def gspread_client(
    standin: StandIn, key: ServiceAccountKey, timeout: float = 10.0
) -> gspread.Client:
    """An unmodified gspread client whose requests go to `standin` instead of Google."""
    base = standin.url

    class StandInHTTPClient(HTTPClient):
        def request(
            self,
            method: str,
            endpoint: str,
            params: ParamsType | None = None,
            data: bytes | None = None,
            json: Any = None,
            files: Any = None,
            headers: Any = None,
        ) -> Response:
            endpoint = endpoint.replace("https://sheets.googleapis.com", base, 1)
            assert endpoint.startswith(base), f"not a Sheets API URL: {endpoint}"
            return super().request(method, endpoint, params, data, json, files, headers)

    creds = _LocalCredentials.from_service_account_info(key.info, scopes=SCOPES)
    client = gspread.Client(auth=creds, http_client=StandInHTTPClient)
    client.set_timeout(timeout)
    return client


@pytest.fixture
def gc(standin: StandIn, service_account_key: ServiceAccountKey) -> Iterator[gspread.Client]:
    """A gspread client of the registered service account, talking to `standin`."""
    client = gspread_client(standin, service_account_key)
    try:
        yield client
    finally:
        client.http_client.session.close()


@pytest.fixture
def quota_registry(standin_clock: ManualClock) -> QuotaRegistry:
    """A fresh quota registry (not the process-wide one) on the stand-in's clock."""
    return QuotaRegistry(clock=standin_clock.now, sleep=standin_clock.sleep)


@pytest.fixture
def google_sheet_factory(
    standin: StandIn, key_file: Path, quota_registry: QuotaRegistry, standin_clock: ManualClock
) -> Iterator[Callable[..., GoogleSheet]]:
    """`make(spec, **options) -> GoogleSheet` against the stand-in; closed at teardown.

    Defaults: the registered key file, the stand-in's URL, `quota_registry`, retries that
    sleep on the manual clock (so backoff and quota pauses take no real time), 5 s timeout.
    """
    made: list[GoogleSheet] = []

    def make(spec: str, **options: object) -> GoogleSheet:
        defaults: dict[str, object] = {
            "credentials": key_file,
            "api_url": standin.url,
            "registry": quota_registry,
            "sleep": standin_clock.sleep,
            "rng": random.Random(7),
            "timeout": 5.0,
            "environ": {},
        }
        sheet = GoogleSheet(spec, **{**defaults, **options})  # type: ignore[arg-type]
        made.append(sheet)
        return sheet

    yield make
    for sheet in made:
        sheet.close()


@pytest.fixture
def google_sheet(
    standin: StandIn,
    service_account_key: ServiceAccountKey,
    google_sheet_factory: Callable[..., GoogleSheet],
) -> Callable[..., GoogleSheet]:
    """`make(rows, title="Sheet1", **options) -> GoogleSheet` over a new shared spreadsheet.

    The same shape as the file backends' fixtures, for batch tests run on every backend.
    """

    def make(
        rows: Sequence[Sequence[str]], title: str = "Sheet1", **options: object
    ) -> GoogleSheet:
        key = standin.create_spreadsheet({title: rows}, shared_with=[service_account_key.email])
        return google_sheet_factory(f"{key}/{title}", **options)

    return make
