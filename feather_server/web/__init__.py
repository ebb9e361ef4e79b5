"""The upload form at GET /, its assets, and onnxruntime-web served from the npm package.

Everything the page loads comes from this origin: its stylesheet and modules under
/assets/, onnxruntime-web's JavaScript and WebAssembly under /vendor/ort/ (from
node_modules, installed by `make deps` from package-lock.json). The page's
Content-Security-Policy holds the browser to that.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, render_template, send_from_directory

from feather_server.ai.languages import LANGUAGES
from feather_server.schema import FEATHER, fields_of
from feather_server.settings import Settings, current_settings

bp = Blueprint("web", __name__, template_folder="templates",
               static_folder="static", static_url_path="/assets")

ORT_DIST = Path(__file__).resolve().parents[2] / "node_modules" / "onnxruntime-web" / "dist"
# Only the runtime files the background-removal worker loads (plus source maps for
# debugging); nothing else from node_modules is reachable.
_ORT_FILE = re.compile(r"^ort[\w.-]*\.(?:mjs|js|wasm|map)$")
_MIME = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".map": "application/json"}

def _content_security_policy(settings: Settings) -> str:
    # Signed download URLs of the batch API point at the S3 endpoint when one is set;
    # the page may fetch from there and nowhere else off this origin.
    connect = ["'self'"]
    if settings.s3_bucket and settings.s3_endpoint_url:
        parts = urlsplit(settings.s3_endpoint_url)
        if parts.scheme in ("http", "https") and parts.netloc:
            connect.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join((
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self'",
        "connect-src " + " ".join(connect),
        "img-src 'self' blob: data:",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


@bp.get("/")
def index() -> Response:
    settings = current_settings()
    html = render_template("index.html", languages=LANGUAGES, fields=fields_of(FEATHER),
                           max_upload_mb=settings.max_upload_bytes / 1_000_000)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = _content_security_policy(settings)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/vendor/ort/<name>")
def onnxruntime_file(name: str) -> Response:
    if not _ORT_FILE.match(name) or not (ORT_DIST / name).is_file():
        abort(404)
    response = send_from_directory(ORT_DIST, name, mimetype=_MIME[Path(name).suffix],
                                   max_age=86_400)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
