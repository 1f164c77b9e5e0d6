"""Google's error bodies are read by code, status and reason, never by message text."""

from __future__ import annotations

import json
from typing import Any

import requests
from google.auth import exceptions as auth_exceptions
from gspread.exceptions import APIError

from sheets_integration.google_errors import GoogleError, classify, refresh_error_text

QUOTA_BODY = {
    "error": {
        "code": 429,
        "message": "Quota exceeded for quota metric 'Write requests' ...",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "quota_limit": "WriteRequestsPerMinutePerUser",
                    "quota_metric": "sheets.googleapis.com/write_requests",
                    "service": "sheets.googleapis.com",
                },
            }
        ],
    }
}


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update(headers or {})
    response.reason = "Reason"
    return response


def test_quota_error_fields() -> None:
    error = GoogleError.from_response(_response(429, QUOTA_BODY, {"Retry-After": "7"}))
    assert (error.code, error.status, error.reason) == (
        429,
        "RESOURCE_EXHAUSTED",
        "RATE_LIMIT_EXCEEDED",
    )
    assert error.quota_limit == "WriteRequestsPerMinutePerUser"
    assert error.retry_after == 7
    assert error.is_quota and error.is_transient
    assert error.summary() == "429 RESOURCE_EXHAUSTED (WriteRequestsPerMinutePerUser)"


def test_a_403_rate_limit_reason_counts_as_quota() -> None:
    body = {"error": {"code": 403, "message": "x", "errors": [{"reason": "userRateLimitExceeded"}]}}
    assert GoogleError.from_response(_response(403, body)).is_quota


def test_a_non_json_error_body() -> None:
    error = GoogleError.from_response(_response(502, b"<html>Bad   Gateway</html>"))
    assert (error.code, error.status, error.message) == (502, "", "<html>Bad Gateway</html>")
    assert error.is_transient


def test_classify() -> None:
    not_found = {"error": {"code": 404, "message": "m", "status": "NOT_FOUND"}}
    assert classify(APIError(_response(404, not_found))) is None
    quota = classify(APIError(_response(429, QUOTA_BODY)))
    assert quota is not None and quota.quota
    server = classify(APIError(_response(503, {"error": {"code": 503, "status": "UNAVAILABLE"}})))
    assert server is not None and not server.quota
    assert classify(requests.ReadTimeout("slow")) is not None
    assert classify(requests.ConnectionError(ConnectionResetError(104, "reset"))) is not None
    assert classify(auth_exceptions.TransportError("down")) is not None
    assert classify(auth_exceptions.RefreshError("no", retryable=False)) is None
    assert classify(ValueError("bug")) is None


def test_refresh_error_text() -> None:
    exc = auth_exceptions.RefreshError(
        "invalid_grant: Invalid JWT Signature.",
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
    )
    assert refresh_error_text(exc) == "invalid_grant: Invalid JWT Signature."
