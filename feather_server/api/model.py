"""GET /api/model: an ONNX model for the in-browser background-removal worker.

``full`` and ``quantized`` are MODNet, fetched from the upstream and cached; ``lite`` is
U²-Netp from the installed package, for hosts without network.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from feather_server.errors import ApiError
from feather_server.http.policy import rate_limited
from feather_server.services.model_cache import VARIANTS, ModelCache

bp = Blueprint("model", __name__, url_prefix="/api")

_EXTENSION = "feather.model_cache"
# The bytes of a variant never change under one URL; the ETag covers an operator's swap.
CACHE_CONTROL = "public, max-age=31536000, immutable"


@bp.record_once
def _attach_cache(state: BlueprintSetupState) -> None:
    state.app.extensions[_EXTENSION] = ModelCache(state.app.config["FEATHER"])


@bp.get("/model")
@rate_limited
def model() -> Response:
    variant = (request.args.get("variant") or "").strip().lower() or "full"
    if variant not in VARIANTS:
        raise ApiError("INVALID_INPUT", "Unknown model variant",
                       {"variant": f"must be one of {', '.join(VARIANTS)}"})
    cache: ModelCache = current_app.extensions[_EXTENSION]
    found = cache.get(variant)
    response = Response(found.data, mimetype="application/octet-stream")
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.set_etag(found.etag)
    response.make_conditional(request)  # 304 on a matching If-None-Match
    return response
