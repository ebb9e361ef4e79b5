"""GET /api/openapi.json: the OpenAPI 3.1 document of the whole API."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from feather_core import __version__
from feather_server.openapi import build_document

bp = Blueprint("openapi", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi() -> Response:
    response = jsonify(build_document(__version__))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
