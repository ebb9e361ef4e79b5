"""Exceptions to HTTP answers, in the dialect of the request.

Views and services raise; this module alone turns what they raise into a response,
with the status the registry (``feather_server.errors``) gives each code.

Feather dialect:    {"error": {"code": ..., "message": ..., "details": {...}?}}
FluxImage dialect:  {"error": "<code or text>", "message": ...}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from feather_core.errors import FeatherError
from feather_server.errors import CODE_BY_STATUS, STATUS_BY_CODE, ApiError, Unavailable, status_of
from feather_server.http import dialect
from feather_server.metrics import metrics

__all__ = ["ApiError", "STATUS_BY_CODE", "error_body", "error_response", "init_app"]

log = logging.getLogger("feather.errors")


def error_body(code: str, message: str, details: Mapping[str, str] | None = None,
               flux_error: str | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of an error in the dialect of the current request."""
    if dialect.current() == dialect.FLUX:
        # FluxImage's envelope has no details: the message names each bad field instead.
        if details:
            message = f"{message}: " + "; ".join(f"{k} {v}" for k, v in details.items())
        return {"error": flux_error or code, "message": message, **(extra or {})}
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = dict(details)
    return {"error": body}


def error_response(status: int, code: str, message: str,
                   details: Mapping[str, str] | None = None,
                   flux_error: str | None = None,
                   headers: Mapping[str, str] | None = None,
                   extra: Mapping[str, Any] | None = None) -> Response:
    metrics().refusals.labels(code).inc()
    response = jsonify(error_body(code, message, details, flux_error, extra))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Register the handlers that give every error the JSON envelope."""

    @app.errorhandler(FeatherError)
    def feather_error(exc: FeatherError) -> Response:
        status = status_of(exc.code)
        if status >= 500:
            log.error("%s: %s", exc.code, exc.message, exc_info=exc)
        return error_response(status, exc.code, exc.message, exc.details or None)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        if isinstance(exc, Unavailable):
            metrics().dependency_errors.labels(exc.part).inc()
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.message, exc_info=exc)
        return error_response(exc.status, exc.code, exc.message, exc.details or None,
                              exc.flux_error, exc.headers, exc.extra)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = CODE_BY_STATUS.get(status, "INTERNAL_ERROR" if status >= 500 else "INVALID_INPUT")
        message = exc.description or exc.name
        if status == 413:
            message = "The upload exceeds the size limit"
        headers = {}
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(valid_methods)
        return error_response(status, code, message, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("Unexpected error")
        return error_response(500, "INTERNAL_ERROR", "An unexpected error occurred")
