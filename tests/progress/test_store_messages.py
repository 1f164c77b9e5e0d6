"""The store's messages name no front end's flags (the CLI adds `--db`, the server its own
words): whoever opens a store gets a message that fits where its URL came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from progress import open_store
from progress.errors import STORE_SETTING, StoreUnavailable


@pytest.mark.parametrize(
    ("url", "about_url"),
    [
        ("garbage", True),
        ("mysql://u@h/db", True),
        ("sqlite:///{tmp}", True),
        ("sqlite:///{tmp}/no/such/dir/x.db", True),
        ("sqlite:///{tmp}/missing.db", False),
        ("sqlite:///{tmp}/notes.db", False),
    ],
)
def test_a_store_that_cannot_be_opened_says_why_without_cli_flags(
    tmp_path: Path, url: str, about_url: bool
) -> None:
    (tmp_path / "notes.db").write_text("not a database\n" * 100, encoding="utf-8")
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url.format(tmp=tmp_path), create=not url.endswith("missing.db")).close()
    message = str(caught.value)
    assert "--db" not in message and "`sheetbatch" not in message, message
    assert caught.value.about_url is about_url
    if not about_url:
        assert STORE_SETTING in message  # the hint names the setting, the front end words it
