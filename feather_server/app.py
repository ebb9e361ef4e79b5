"""The app factory: settings in, a Flask app with every part registered out."""

from __future__ import annotations

from flask import Flask

from feather_server import logs
from feather_server.http.request import FeatherRequest
from feather_server.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app; ``settings`` defaults to ``Settings.from_env()``."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.request_class = FeatherRequest
    app.config["FEATHER"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logs.configure(settings.log_level, settings.log_format)

    from feather_cli import keys as keys_cli
    from feather_server import storage, web
    from feather_server.ai.describe import describer_for
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
    from feather_server.http import cors, errors, observability, policy, ratelimit

    # One line per part; each part's init_app registers its hooks. Order matters at the
    # top: the request id and timing first, then errors, body limits, rate limits, CORS.
    observability.init_app(app)
    errors.init_app(app)
    policy.init_app(app)
    ratelimit.init_app(app)
    cors.init_app(app)
    storage.init_app(app)
    describer = describer_for(settings)  # alt text and names, when the operator set AI_*
    if describer is not None:
        app.extensions[batch.AI_DESCRIBER] = describer
    keys_cli.init_app(app)
    for part in (health, ready, compress, batch, downloads, usage, model, openapi, docs, web):
        app.register_blueprint(part.bp)
    return app
