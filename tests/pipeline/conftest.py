"""Fixtures for pipeline tests: the fixture websites and a fetcher allowed to reach them."""

from __future__ import annotations

import pytest

from tests.support.sites import fetcher, loopback_only, site_server

__all__ = ["fetcher", "loopback_only", "site_server"]


@pytest.fixture(autouse=True)
def _loopback_only(loopback_only: None) -> None:
    """Every pipeline test runs with non-loopback connections refused (see `loopback_only`)."""
