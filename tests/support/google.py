"""Google Sheets test support: a running stand-in, service-account key files, gspread clients.

Import the fixtures into a test module with `from tests.support.google import *`. Every
fixture here keeps traffic on the loopback interface: `loopback_only` fails a test whose
code (or a library's background thread) tried to resolve any other host.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gspread
import pytest
from google.oauth2 import service_account
from gspread.http_client import HTTPClient, ParamsType
from requests import Response

from gsheets_standin import ManualClock, ServiceAccountKey, StandIn, generate_service_account_key

__all__ = [
    "SCOPES",
    "gc",
    "gspread_client",
    "key_file",
    "loopback_only",
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
def service_account_key(standin: StandIn, session_service_account_key: ServiceAccountKey) -> ServiceAccountKey:
    """A service-account key registered with `standin` (its token_uri points there)."""
    return standin.register_service_account(session_service_account_key)


@pytest.fixture
def key_file(tmp_path: Path, service_account_key: ServiceAccountKey) -> Path:
    """The service-account key as a JSON file, as a user would download it."""
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(service_account_key.info))
    return path


class _LocalCredentials(service_account.Credentials):  # type: ignore[misc]
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
