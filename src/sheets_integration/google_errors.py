"""Google-specific sheet errors, and reading Google's JSON error bodies.

Errors are told apart by the body's `code`, `status` and ErrorInfo `reason`, never by
message text. `classify` decides which failures are transient (worth a retry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from google.auth import exceptions as auth_exceptions
from gspread.exceptions import APIError

from sheets_integration.errors import SheetError, SheetNotFound
from sheets_integration.quota import Failure

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_QUOTA_REASONS = frozenset({"RATE_LIMIT_EXCEEDED", "rateLimitExceeded", "userRateLimitExceeded"})


class SheetSpecError(SheetError, ValueError):
    """A SHEET argument that is not a Google Sheets URL, key or `key/worksheet`."""


class ApiUrlRefused(SheetError):
    """A Sheets API URL or endpoint the credential must not be sent to."""


class CredentialError(SheetError):
    """The Google credential is missing, unreadable, or refused by Google."""


class SheetAccessDenied(SheetError):
    """The credential's account may not open the spreadsheet (403)."""


class GoogleApiError(SheetError):
    """Google refused a request for a reason no other error describes."""

    def __init__(self, message: str, error: GoogleError | None = None) -> None:
        super().__init__(message)
        self.error = error


class SheetUnavailable(SheetError):
    """Google did not answer usefully after every retry (5xx, timeouts, resets, a token
    endpoint down), or rows kept moving under a write.

    Transient: nothing was lost, the caller keeps its pending writes. The message says so
    but not when they are written: `retry_later` tells the caller it may try again (a
    sheet writer at its next flush); a process that is exiting says "run again" instead.
    """

    retry_later = True


class QuotaExhausted(SheetUnavailable):
    """Google kept answering 429 RESOURCE_EXHAUSTED after every retry. Transient too."""


@dataclass(frozen=True)
class GoogleError:
    """The useful fields of a Google API error answer."""

    code: int
    status: str
    message: str
    reason: str | None = None
    quota_limit: str | None = None
    retry_after: float | None = None

    @classmethod
    def from_response(cls, response: requests.Response) -> GoogleError:
        """Parse `{"error": {"code", "status", "message", "details": [ErrorInfo...]}}`.

        A body that is not Google's JSON yields the HTTP status and a clipped text.
        """
        retry_after = _seconds(response.headers.get("Retry-After"))
        try:
            error = response.json()["error"]
            if not isinstance(error, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            text = " ".join(response.text.split())[:200]
            return cls(response.status_code, "", text or response.reason, retry_after=retry_after)
        reason = quota_limit = None
        for detail in error.get("details") or []:
            if isinstance(detail, dict) and detail.get("@type") == _ERROR_INFO:
                reason = detail.get("reason")
                metadata = detail.get("metadata") or {}
                quota_limit = metadata.get("quota_limit")
                break
        # Older Google APIs put the reason in error.errors[0].reason.
        for item in error.get("errors") or []:
            if reason is None and isinstance(item, dict):
                reason = item.get("reason")
        return cls(
            code=int(error.get("code") or response.status_code),
            status=str(error.get("status") or ""),
            message=str(error.get("message") or ""),
            reason=reason,
            quota_limit=quota_limit,
            retry_after=retry_after,
        )

    @property
    def is_quota(self) -> bool:
        """A rate-limit refusal (429, or a 403 whose reason says rate limit)."""
        return (
            self.code == 429
            or self.status == "RESOURCE_EXHAUSTED"
            or (self.reason or "") in _QUOTA_REASONS
        )

    @property
    def is_transient(self) -> bool:
        """Worth retrying: quota, request timeout (408) or a server error (5xx)."""
        return self.is_quota or self.code == 408 or self.code >= 500

    def summary(self) -> str:
        """ "429 RESOURCE_EXHAUSTED (WriteRequestsPerMinutePerUser)", for logs and messages."""
        text = f"{self.code} {self.status}".strip()
        if self.quota_limit:
            return f"{text} ({self.quota_limit})"
        if self.message:
            return f"{text}: {self.message}"
        return text


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def google_error(exc: APIError) -> GoogleError:
    """The parsed body of a gspread APIError."""
    return GoogleError.from_response(exc.response)


def classify(exc: Exception) -> Failure | None:
    """A `Failure` when `exc` is transient (quota, 408, 5xx, timeout, reset), else None."""
    if isinstance(exc, APIError):
        error = google_error(exc)
        if error.is_transient:
            return Failure(error.summary(), quota=error.is_quota)
        return None
    if isinstance(exc, requests.Timeout):
        return Failure("timed out")
    if isinstance(exc, requests.ConnectionError):
        return Failure(f"connection failed ({_root_cause(exc)})")
    if isinstance(exc, auth_exceptions.TransportError):
        return Failure(f"token endpoint unreachable ({_root_cause(exc)})")
    if isinstance(exc, auth_exceptions.RefreshError) and getattr(exc, "retryable", False):
        return Failure("token endpoint busy")
    return None


def gave_up(sheet: str, what: str, failure: Failure, attempts: int) -> SheetUnavailable:
    """The error after the last attempt at a transient failure (no promise of a retry)."""
    if failure.quota:
        return QuotaExhausted(
            f"{sheet}: Google Sheets quota still exhausted after {attempts} attempts to {what} "
            f"({failure.reason}); nothing is lost (lower google.write_per_minute if this "
            "persists)"
        )
    return SheetUnavailable(
        f"{sheet}: Google Sheets unavailable after {attempts} attempts to {what} "
        f"({failure.reason}); nothing is lost"
    )


def refused_credential(
    sheet: str, account: str, exc: auth_exceptions.RefreshError
) -> CredentialError:
    """The error for a token request Google refused, saying what to do about it."""
    reason = refresh_error_text(exc)
    body = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    description = str(body.get("error_description", reason))
    # The token endpoint tells a wrong clock only in words: the JWT's iat/exp are off.
    if body.get("error") == "invalid_grant" and (
        "iat" in description or "reasonable timeframe" in description
    ):
        return CredentialError(
            f"{sheet}: Google refused the credential of {account} ({reason}); this "
            "machine's clock looks wrong: set the system clock right (enable NTP time "
            "sync) and run again"
        )
    return CredentialError(
        f"{sheet}: Google refused the credential of {account} ({reason}); check the key "
        "file, or create a new key"
    )


def translated(
    error: GoogleError, *, sheet: str, key: str, account: str, service_account: bool
) -> SheetError:
    """The SheetError for a permanent error answer of the Sheets API."""
    if error.code == 404:
        return SheetNotFound(
            f"Google spreadsheet {key}", "check the URL or key, and that it still exists"
        )
    if error.code == 403:
        if error.reason == "SERVICE_DISABLED":
            return SheetAccessDenied(
                f"{sheet}: the Google Sheets API is disabled for the credential's project; "
                "enable it in the Google Cloud console"
            )
        if service_account:
            return SheetAccessDenied(
                f"{sheet}: {account} may not edit this spreadsheet; share the sheet with "
                f"{account} (as Editor)"
            )
        return SheetAccessDenied(
            f"{sheet}: the signed-in Google account may not edit this spreadsheet; ask its "
            "owner to share it with you (as Editor)"
        )
    if error.code == 401:
        return CredentialError(
            f"{sheet}: Google rejected the credential of {account} ({error.summary()}); "
            "check the key file, or create a new key"
        )
    return GoogleApiError(f"{sheet}: Google refused the request ({error.summary()})", error)


def refresh_error_text(exc: auth_exceptions.RefreshError) -> str:
    """ "invalid_grant: Invalid JWT Signature." from a google-auth RefreshError."""
    if len(exc.args) > 1 and isinstance(exc.args[1], dict):
        body: dict[str, Any] = exc.args[1]
        error, description = body.get("error"), body.get("error_description")
        if error:
            return f"{error}: {description}" if description else str(error)
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        nxt = seen.__cause__ or seen.__context__
        assert nxt is not None
        seen = nxt
    text = str(seen) or type(seen).__name__
    return " ".join(text.split())[:160]
