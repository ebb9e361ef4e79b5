"""The HTTP edge of Feather: parses, validates, authorises, responds."""

from __future__ import annotations

import logging

from flask import Flask

from feather_server.http.request import FeatherRequest
from feather_server.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app; ``settings`` defaults to ``Settings.from_env()``."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.request_class = FeatherRequest
    app.config["FEATHER"] = settings
    # Feather endpoints take one file plus a small watermark and the fields; the
    # batch endpoint raises this per request. Werkzeug answers 413 from the
    # Content-Length before reading the body.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + 2_000_000
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    from feather_cli import keys as keys_cli
    from feather_server import accounts, ai, storage, web
    from feather_server.api import (
        batch,
        compress,
        docs,
        downloads,
        health,
        model,
        openapi,
        ready,
        usage,
    )
    from feather_server.http import cors, errors, observability, ratelimit

    # One line per part; each part's init_app registers its hooks. Order matters only
    # at the top: the request id and timing first, then errors, limits and CORS.
    observability.init_app(app)
    errors.init_app(app)
    ratelimit.init_app(app)
    cors.init_app(app)
    accounts.init_app(app)  # key auth and charging of the Feather endpoints
    storage.init_app(app)
    ai.init_app(app)  # the batch view's AI describer, when AI_BASE_URL and AI_MODEL are set
    keys_cli.init_app(app)
    for part in (health, ready, compress, batch, downloads, usage, model, openapi, docs, web):
        app.register_blueprint(part.bp)
    return app
