"""Liveness and the format list."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify

from feather_core import __version__
from feather_core.formats import INPUT_NAMES, OUTPUT_NAMES
from feather_server.settings import current_settings

bp = Blueprint("health", __name__, url_prefix="/api")


@bp.get("/health")
def health() -> Response:
    now = datetime.now(UTC)
    return jsonify(
        ok=True,
        version=__version__,
        env=current_settings().env,
        timestamp=now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
    )


@bp.get("/formats")
def formats() -> Response:
    return jsonify(input=list(INPUT_NAMES), output=list(OUTPUT_NAMES))
