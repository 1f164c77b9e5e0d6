"""The stand-in's tests use the shared Google fixtures (a running stand-in, keys, gspread)."""

from collections.abc import Iterator

import httpx
import pytest

from gsheets_standin import ServiceAccountKey, StandIn
from tests.support.google import *  # noqa: F403


@pytest.fixture
def api(
    standin: StandIn, service_account_key: ServiceAccountKey, book: str
) -> Iterator[httpx.Client]:
    """A raw v4 client of the spreadsheet the test module's `book` fixture creates."""
    with httpx.Client(
        base_url=f"{standin.url}/v4/spreadsheets/{book}",
        headers={"Authorization": f"Bearer {standin.issue_token(service_account_key.email)}"},
        timeout=5,
    ) as client:
        yield client
