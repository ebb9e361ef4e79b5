"""The HTTP edge of Feather: parses, validates, authorises, responds."""

from __future__ import annotations

import logging

from flask import Flask

from app.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app; ``settings`` defaults to ``Settings.from_env()``."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["FEATHER"] = settings
    # Feather endpoints take one file plus a small watermark and the fields; the
    # batch endpoint raises this per request. Werkzeug answers 413 from the
    # Content-Length before reading the body.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + 2_000_000
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    from app import cors, errors, observability, ratelimit
    from app.views import compress, health

    # One line per part; each part's init_app registers its blueprints and hooks.
    errors.init_app(app)
    observability.init_app(app)  # first: request id and timing for everything after
    ratelimit.init_app(app)
    cors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(compress.bp)
    from app import accounts, keys_cli, storage
    from app.views import batch, downloads, usage
    accounts.init_app(app)  # key auth and charging of the Feather endpoints
    storage.init_app(app)
    app.register_blueprint(batch.bp)
    from app import ai
    ai.init_app(app)  # the batch view's AI describer, when AI_BASE_URL and AI_MODEL are set
    app.register_blueprint(downloads.bp)
    app.register_blueprint(usage.bp)
    keys_cli.init_app(app)
    from app.views import web
    app.register_blueprint(web.bp)
    from app.views import model
    app.register_blueprint(model.bp)
    from app.views import docs
    app.register_blueprint(docs.bp)
    from app.views import openapi
    app.register_blueprint(openapi.bp)
    return app
