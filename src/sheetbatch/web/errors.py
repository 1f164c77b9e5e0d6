"""The exception tree of the web layer: every API error is an `ApiError` with a JSON body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered as `{"error": message, "code": code, "field": field}` with `status`."""

    status = 400
    code = "bad_request"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.message, "code": self.code, "field": self.field}


class BadRequest(ApiError):
    """Malformed input: not JSON, a malformed id, a query parameter of the wrong kind (400)."""


class Invalid(ApiError):
    """Well-formed input the server cannot act on: a missing sheet, an unknown pipeline (422)."""

    status = 422
    code = "invalid"


class NotFound(ApiError):
    """An unknown job or batch (404)."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """The action conflicts with the current state: the batch is being run elsewhere (409)."""

    status = 409
    code = "conflict"


class Unauthorized(ApiError):
    """No valid token or session (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """A cross-site request, a missing CSRF token, a Host the server does not answer, or a
    local sheet outside the allowed directories (403)."""

    status = 403
    code = "forbidden"


class Unavailable(ApiError):
    """The server is shutting down or the store cannot be reached (503)."""

    status = 503
    code = "unavailable"


class TooManyRequests(ApiError):
    """Too many failed authentications from this address (429, with Retry-After)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class TooLarge(ApiError):
    """A request body over the size limit (413)."""

    status = 413
    code = "too_large"
