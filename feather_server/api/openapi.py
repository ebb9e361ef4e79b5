"""GET /api/openapi.json: the OpenAPI 3.1 document of the whole API."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from feather_server.api.ready import OPENAPI_PATH as READY_PATH
from feather_server.openapi import build_document
from feather_core import __version__

bp = Blueprint("openapi", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi() -> Response:
    document = build_document(__version__)
    document["paths"].setdefault("/api/ready", READY_PATH)
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
