"""The errors registry: every code the API answers with, its status, and the errors
the services raise.

A part Feather depends on being down is one exception family with one answer: the
accounts database (``DatabaseUnavailable``) and the output store (``StoreError``) raise
subclasses of ``Unavailable``, answered 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After``
in the request's dialect; the cause (host names, driver messages) goes to the log,
never to the client.

Core exceptions (``feather_core.errors``) and ``ApiError`` carry a code; this table
alone knows each code's HTTP status. Services (accounts, storage, AI, batch) raise
``ApiError``; ``feather_server.http.errors`` renders it in the request's dialect. No
Flask here, so services and the command line can raise and read these too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

STATUS_BY_CODE: dict[str, int] = {
    "INVALID_INPUT": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "QUOTA_EXCEEDED": 403,
    "AI_NOT_AVAILABLE": 403,
    "NO_CREDITS": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "REQUEST_TIMEOUT": 408,
    "IDEMPOTENCY_KEY_IN_USE": 409,
    "GONE": 410,
    "FILE_TOO_LARGE": 413,
    "UNSUPPORTED_FORMAT": 415,
    "INVALID_IMAGE": 422,
    "TOO_MANY_PIXELS": 422,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "RATE_LIMIT_EXCEEDED": 429,
    "PROCESSING_FAILED": 500,
    "INTERNAL_ERROR": 500,
    "MODEL_FETCH_FAILED": 502,
    "BAD_GATEWAY": 502,
    "SERVICE_UNAVAILABLE": 503,
    "TIMEOUT": 504,
}

# The code of a status Werkzeug or a proxy answers without a code of its own.
CODE_BY_STATUS: dict[int, str] = {
    400: "INVALID_INPUT", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT", 410: "GONE", 413: "FILE_TOO_LARGE",
    415: "UNSUPPORTED_FORMAT", 429: "RATE_LIMIT_EXCEEDED",
}


def status_of(code: str) -> int:
    """The HTTP status of an error code (500 for a code nobody registered)."""
    return STATUS_BY_CODE.get(code, 500)


class ApiError(Exception):
    """An error of the service itself (limits, keys, quotas, storage...), by code.

    ``flux_error`` is what the FluxImage dialect puts in its ``error`` field when it
    differs from the code (its document uses sentences such as "Unauthorized");
    ``extra`` adds fields to the FluxImage body (a failed batch lists its ``errors``).
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: Mapping[str, str] | None = None,
        *,
        status: int | None = None,
        flux_error: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.status = status or status_of(code)
        self.flux_error = flux_error
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


log = logging.getLogger("feather.dependencies")

#: Seconds a client is told to wait: long enough for a restarted database or a
#: failed-over bucket, short enough that a retry loop notices recovery.
RETRY_AFTER_SECONDS = 5


class Unavailable(ApiError):
    """A dependency did not answer, or answered that it cannot serve."""

    #: What the client is told is down ("the accounts database").
    part = "a service Feather depends on"

    def __init__(self, detail: str) -> None:
        super().__init__("SERVICE_UNAVAILABLE",
                         f"{self.part[0].upper()}{self.part[1:]} is unavailable; "
                         f"retry in a few seconds",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.detail = detail

    def __str__(self) -> str:
        # Log lines ("storing a.jpg failed: %s") show the cause, the client the message.
        return self.detail
