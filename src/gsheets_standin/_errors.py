"""Google's JSON error bodies, as the Sheets v4 API sends them."""

from __future__ import annotations

from typing import Any

SERVICE = "sheets.googleapis.com"


class ApiError(Exception):
    """An error answer: HTTP status, canonical status name, message and optional details."""

    def __init__(
        self,
        code: int,
        status: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {status}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """`{"error": {"code", "message", "status", ["details"]}}`."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_argument(message: str) -> ApiError:
    """400 INVALID_ARGUMENT."""
    return ApiError(400, "INVALID_ARGUMENT", message)


def unparsable_range(text: str) -> ApiError:
    """400 "Unable to parse range: <range as given>"."""
    return invalid_argument(f"Unable to parse range: {text}")


def not_found() -> ApiError:
    """404 NOT_FOUND, the answer for a spreadsheet id that does not exist."""
    return ApiError(404, "NOT_FOUND", "Requested entity was not found.")


def permission_denied() -> ApiError:
    """403 PERMISSION_DENIED, the answer for a spreadsheet not shared with the caller."""
    return ApiError(403, "PERMISSION_DENIED", "The caller does not have permission")


def unauthenticated(reason: str, method: str) -> ApiError:
    """401 UNAUTHENTICATED with an ErrorInfo reason (CREDENTIALS_MISSING, ACCESS_TOKEN_EXPIRED)."""
    if reason == "CREDENTIALS_MISSING":
        message = (
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project."
        )
    else:
        message = (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project."
        )
    detail = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": SERVICE, "method": method},
    }
    return ApiError(
        401,
        "UNAUTHENTICATED",
        message,
        [detail],
        {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def rate_limited(kind: str, per_user: bool, limit: int, project_number: int) -> ApiError:
    """429 RESOURCE_EXHAUSTED with the ErrorInfo (RATE_LIMIT_EXCEEDED) and Help details."""
    noun = "Read" if kind == "read" else "Write"
    scope = "PerUser" if per_user else "PerProject"
    limit_text = f"{noun} requests per minute" + (" per user" if per_user else "")
    message = (
        f"Quota exceeded for quota metric '{noun} requests' and limit '{limit_text}' of service "
        f"'{SERVICE}' for consumer 'project_number:{project_number}'."
    )
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {
                "consumer": f"projects/{project_number}",
                "quota_limit": f"{noun}RequestsPerMinute{scope}",
                "quota_limit_value": str(limit),
                "quota_location": "global",
                "quota_metric": f"{SERVICE}/{kind}_requests",
                "quota_unit": "1/min/{project}/{user}" if per_user else "1/min/{project}",
                "service": SERVICE,
            },
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Request a higher quota limit.",
                    "url": "https://cloud.google.com/docs/quotas/help/request_increase",
                }
            ],
        },
    ]
    return ApiError(429, "RESOURCE_EXHAUSTED", message, details)


def internal() -> ApiError:
    """500 INTERNAL."""
    return ApiError(500, "INTERNAL", "Internal error encountered.")


def unavailable() -> ApiError:
    """503 UNAVAILABLE."""
    return ApiError(503, "UNAVAILABLE", "The service is currently unavailable.")
