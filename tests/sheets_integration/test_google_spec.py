"""SHEET specs, credentials, and the one-line errors a user sees when something is off."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gsheets_standin import ServiceAccountKey, StandIn, generate_service_account_key
from sheets_integration.errors import SheetError, SheetNotFound
from sheets_integration.google_access import looks_like_google, parse_sheet_spec
from sheets_integration.google_errors import CredentialError, SheetAccessDenied, SheetSpecError
from sheets_integration.google_sheet import GoogleSheet
from sheets_integration.quota import QuotaRegistry
from tests.support.google import *  # noqa: F403

MakeSheet = Callable[..., GoogleSheet]
KEY = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        (KEY, (KEY, None, None)),
        (f"  {KEY}  ", (KEY, None, None)),
        (f"{KEY}/Leads 2024", (KEY, None, "Leads 2024")),
        (f"{KEY}/a/b", (KEY, None, "a/b")),
        (f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=123", (KEY, 123, None)),
        (f"https://docs.google.com/spreadsheets/d/{KEY}/edit?gid=7#gid=7", (KEY, 7, None)),
        (f"https://docs.google.com/spreadsheets/d/{KEY}/edit?usp=sharing", (KEY, None, None)),
        (f"https://docs.google.com/spreadsheets/u/1/d/{KEY}/edit", (KEY, None, None)),
        (f"docs.google.com/spreadsheets/d/{KEY}", (KEY, None, None)),
    ],
)
def test_parse_sheet_spec(spec: str, parsed: tuple[str, int | None, str | None]) -> None:
    assert parse_sheet_spec(spec) == parsed
    assert looks_like_google(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("companies", "not a Google Sheets URL or key"),
        ("https://docs.google.com/document/d/abc/edit", "not a Google Sheets spreadsheet URL"),
        ("https://docs.google.com/spreadsheets/d/e/2PACX-1vQ/pubhtml", "published-to-the-web"),
        ("https://example.com/spreadsheets/d/abc", "not a Google Sheets URL or key"),
    ],
)
def test_bad_specs_say_what_to_give(spec: str, message: str) -> None:
    with pytest.raises(SheetSpecError, match=message) as caught:
        parse_sheet_spec(spec)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, SheetError)


def test_local_files_do_not_look_like_google(tmp_path: Path) -> None:
    local = tmp_path / KEY
    local.write_text("a,b\n")
    assert not looks_like_google(str(local))
    assert not looks_like_google("companies.csv")
    assert not looks_like_google("data/companies.xlsx")


def test_missing_credential(standin: StandIn) -> None:
    with pytest.raises(CredentialError, match=r"pass --credentials FILE .* GOOGLE_APPLICATION"):
        GoogleSheet(KEY, api_url=standin.url, environ={})


def test_credential_from_the_environment(
    standin: StandIn, key_file: Path, service_account_key: ServiceAccountKey
) -> None:
    key = standin.create_spreadsheet({"S": [["a"]]}, shared_with=[service_account_key.email])
    environ = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "SHEETBATCH_SHEETS_API_URL": standin.url,
    }
    with GoogleSheet(key, environ=environ) as sheet:
        assert sheet.read().header == ["a"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "credential file not found"),
        ("not json", "is not JSON"),
        (json.dumps({"type": "external_account"}), "has type 'external_account'"),
        (json.dumps({"type": "service_account", "client_email": "x@y"}), "not a usable"),
    ],
)
def test_unusable_credential_files(
    tmp_path: Path, standin: StandIn, content: str | None, message: str
) -> None:
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CredentialError, match=message):
        GoogleSheet(KEY, credentials=path, api_url=standin.url, environ={})


def test_a_key_google_does_not_know(
    tmp_path: Path, standin: StandIn, google_sheet_factory: MakeSheet
) -> None:
    stranger = generate_service_account_key("gone@p.iam.gserviceaccount.com", standin.token_url)
    path = tmp_path / "old-key.json"
    path.write_text(stranger.dumps())
    sheet = google_sheet_factory(KEY, credentials=path)
    with pytest.raises(CredentialError, match=r"refused the credential of gone@p.*invalid_grant"):
        sheet.read()


def test_a_sheet_not_shared_says_whom_to_share_with(
    standin: StandIn,
    service_account_key: ServiceAccountKey,
    key_file: Path,
    quota_registry: QuotaRegistry,
) -> None:
    key = standin.create_spreadsheet(shared_with=["owner@example.com"])
    with pytest.raises(SheetAccessDenied) as caught:  # open() checks at once
        GoogleSheet.open(
            key, credentials=key_file, api_url=standin.url, registry=quota_registry, environ={}
        )
    assert str(caught.value) == (
        f"{key}: {service_account_key.email} may not edit this spreadsheet; "
        f"share the sheet with {service_account_key.email} (as Editor)"
    )


def test_missing_spreadsheet(google_sheet_factory: MakeSheet) -> None:
    with pytest.raises(SheetNotFound, match=f"Google spreadsheet {KEY}; check the URL or key"):
        google_sheet_factory(KEY).read()


def test_missing_worksheet_lists_the_titles(
    standin: StandIn, service_account_key: ServiceAccountKey, google_sheet_factory: MakeSheet
) -> None:
    key = standin.create_spreadsheet(
        {"Leads": [], "Done": []}, shared_with=[service_account_key.email]
    )
    with pytest.raises(SheetNotFound, match=r"worksheet 'Nope'.*'Leads', 'Done'"):
        google_sheet_factory(f"{key}/Nope").read()
    with pytest.raises(SheetNotFound, match="worksheet gid=42"):
        google_sheet_factory(f"https://docs.google.com/spreadsheets/d/{key}/edit#gid=42").read()


def test_an_authorized_user_file_works(
    tmp_path: Path, standin: StandIn, google_sheet_factory: MakeSheet
) -> None:
    info = standin.create_authorized_user("person@example.com")
    path = tmp_path / "authorized_user.json"
    path.write_text(json.dumps(info))
    key = standin.create_spreadsheet({"S": [["x"]]}, shared_with=["person@example.com"])
    assert google_sheet_factory(key, credentials=path).read().header == ["x"]
    private = standin.create_spreadsheet(shared_with=["someone@example.com"])
    with pytest.raises(SheetAccessDenied, match="ask its owner to share it"):
        google_sheet_factory(private, credentials=path).read()


def test_plain_http_is_only_for_loopback(key_file: Path) -> None:
    with pytest.raises(SheetError, match="plain http to a non-loopback host"):
        GoogleSheet(KEY, credentials=key_file, api_url="http://10.0.0.1:8080", environ={})


@pytest.mark.parametrize("app", ["installed", "web"])
def test_an_oauth_client_id_file_is_named_as_such(
    tmp_path: Path, standin: StandIn, app: str
) -> None:
    path = tmp_path / "client_secret.json"
    client = {
        "client_id": "1-x.apps.googleusercontent.com",
        "client_secret": "s",
        "redirect_uris": [],
    }
    path.write_text(json.dumps({app: client}))
    with pytest.raises(CredentialError) as caught:
        GoogleSheet(KEY, credentials=path, api_url=standin.url, environ={})
    message = str(caught.value)
    assert f"is an OAuth client ID (the {app!r} application type)" in message
    assert "create a service-account key" in message and "\n" not in message


def test_a_wrong_system_clock_is_named(
    tmp_path: Path, session_service_account_key: ServiceAccountKey, quota_registry: QuotaRegistry
) -> None:
    # The token endpoint's clock runs an hour behind ours: our JWT looks issued in the future.
    with StandIn(wall=lambda: time.time() - 3600) as skewed:
        key = skewed.register_service_account(session_service_account_key)
        path = tmp_path / "key.json"
        path.write_text(json.dumps(key.info))
        book = skewed.create_spreadsheet(shared_with=[key.email])
        with pytest.raises(CredentialError) as caught:
            GoogleSheet.open(
                book, credentials=path, api_url=skewed.url, registry=quota_registry, environ={}
            )
    message = str(caught.value)
    assert "reasonable timeframe" in message  # Google's words, quoted
    assert "this machine's clock looks wrong: set the system clock right" in message
