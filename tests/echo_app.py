"""A tiny app that answers what Feather's request class parsed, for the upload tests.

``POST /echo`` answers the fields and, per file part, its name, file name, size,
SHA-256 and whether it was kept in memory or spooled; ``POST /echo-batch`` does the
same with every file spooled, as the batch endpoint does. The settings come from the
environment, as the service's do (``gunicorn 'tests.echo_app:create_echo_app()'``).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from flask import Flask, Response, g, jsonify, request

from feather_server.http import errors
from feather_server.http.request import FeatherRequest, spool_every_file
from feather_server.http.uploads import read_upload
from feather_server.settings import Settings


def create_echo_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.request_class = FeatherRequest
    app.config["FEATHER"] = settings
    app.config["MAX_CONTENT_LENGTH"] = 21 * settings.max_upload_bytes + 2_000_000
    errors.init_app(app)

    def echo() -> Response:
        files: list[dict[str, Any]] = []
        for name, storage in request.files.items(multi=True):
            upload = read_upload(storage, settings.max_upload_bytes)
            spooled = upload.path
            files.append({
                "name": name, "filename": storage.filename, "size": upload.size,
                "sha256": hashlib.sha256(upload.read()).hexdigest(),
                "where": "spool" if spooled else "memory",
                "private": bool(spooled) and (os.stat(os.path.dirname(str(spooled))).st_mode
                                              & 0o077) == 0,
            })
        return jsonify({"fields": [[k, v] for k, v in request.form.items(multi=True)],
                        "files": files})

    @app.get("/health")
    def health() -> Response:
        return jsonify({"ok": True})

    @app.post("/echo")
    def echo_memory() -> Response:
        g.dialect = "feather"
        return echo()

    @app.post("/echo-batch")
    def echo_batch() -> Response:
        g.dialect = "feather"
        spool_every_file()
        return echo()

    @app.post("/flux")
    def flux() -> Response:
        g.dialect = "flux"
        return echo()

    return app

