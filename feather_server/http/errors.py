"""One place that turns exceptions into HTTP answers, in either API dialect.

Core exceptions carry a code; this module alone knows each code's status. Views
raise; they never build error responses.

Feather dialect:    {"error": {"code": ..., "message": ..., "details": {...}?}}
FluxImage dialect:  {"error": "<code or text>", "message": ...}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from feather_core.errors import FeatherError

log = logging.getLogger("feather.errors")

STATUS_BY_CODE: dict[str, int] = {
    "INVALID_INPUT": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "REQUEST_TIMEOUT": 408,
    "GONE": 410,
    "FILE_TOO_LARGE": 413,
    "UNSUPPORTED_FORMAT": 415,
    "INVALID_IMAGE": 422,
    "TOO_MANY_PIXELS": 422,
    "RATE_LIMIT_EXCEEDED": 429,
    "PROCESSING_FAILED": 500,
    "INTERNAL_ERROR": 500,
    "MODEL_FETCH_FAILED": 502,
    "BAD_GATEWAY": 502,
    "SERVICE_UNAVAILABLE": 503,
    "TIMEOUT": 504,
}

_CODE_BY_HTTP_STATUS = {
    400: "INVALID_INPUT", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 410: "GONE", 413: "FILE_TOO_LARGE",
    415: "UNSUPPORTED_FORMAT", 429: "RATE_LIMIT_EXCEEDED",
}


class ApiError(Exception):
    """An error raised by the web layer itself (size limits, auth, quotas, ...).

    ``flux_error`` is what the FluxImage dialect puts in its ``error`` field when it
    differs from the code (its documents use sentences such as "Unauthorized").
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
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.status = status or STATUS_BY_CODE.get(code, 500)
        self.flux_error = flux_error
        self.headers = dict(headers or {})


def error_body(code: str, message: str, details: Mapping[str, str] | None = None,
               flux_error: str | None = None) -> dict[str, Any]:
    """The JSON body of an error in the dialect of the current request."""
    if g.get("dialect") == "flux":
        return {"error": flux_error or code, "message": message}
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = dict(details)
    return {"error": body}


def error_response(status: int, code: str, message: str,
                   details: Mapping[str, str] | None = None,
                   flux_error: str | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    response = jsonify(error_body(code, message, details, flux_error))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Register the handlers that give every error the JSON envelope."""

    @app.errorhandler(FeatherError)
    def feather_error(exc: FeatherError) -> Response:
        status = STATUS_BY_CODE.get(exc.code, 500)
        if status >= 500:
            log.error("%s: %s", exc.code, exc.message, exc_info=exc)
        return error_response(status, exc.code, exc.message, exc.details or None)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details or None,
                              exc.flux_error, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _CODE_BY_HTTP_STATUS.get(status, "INTERNAL_ERROR" if status >= 500
                                        else "INVALID_INPUT")
        message = exc.description or exc.name
        if status == 413:
            message = "The upload exceeds the size limit"
        headers = {}
        if status == 405 and exc.valid_methods if hasattr(exc, "valid_methods") else False:
            headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return error_response(status, code, message, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("Unexpected error")
        return error_response(500, "INTERNAL_ERROR", "An unexpected error occurred")
