"""Cross-origin access to /api/* for browser clients on the origins of CORS_ORIGINS.

- An allowed origin gets ``Access-Control-Allow-Origin`` (its own origin, or ``*``
  when CORS_ORIGINS is ``*``); a disallowed one gets no CORS header at all, so the
  browser refuses to hand it the response.
- Preflights (OPTIONS) are answered, and are never rate limited.
- The results Feather reports in ``X-*`` headers, the rate-limit headers, Retry-After,
  X-Request-Id and Content-Disposition are exposed to scripts; so is any other ``X-*``
  header a response carries, so a new endpoint's headers need no change here.
- Credentials (cookies) are never allowed: the API authenticates with a Bearer key,
  which a script sends as an ordinary header, and a ``*`` allowlist with credentials
  would hand every site the user's cookies.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_cors import CORS

from feather_server.settings import Settings

EXPOSED_HEADERS = (
    "Content-Disposition", "Retry-After", "X-Request-Id",
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
    "X-Original-Bytes", "X-Output-Bytes", "X-Output-Quality", "X-Output-Width",
    "X-Output-Height", "X-Output-Format", "X-Compression-Ratio", "X-Processing-Time-Ms",
    "X-Target-Met", "X-Resized", "X-Iterations", "X-Output-Unchanged", "X-Output-Score",
)
_PREFLIGHT_MAX_AGE_S = 600


def init_app(app: Flask) -> None:
    """Answer CORS for /api/* when CORS_ORIGINS is set; do nothing otherwise."""
    settings: Settings = app.config["FEATHER"]
    if not settings.cors_origins:
        return
    wildcard = "*" in settings.cors_origins
    # Registered before flask-cors's own hook, so it runs after it.
    app.after_request(_expose_result_headers)
    CORS(
        app,
        resources={r"/api/*": {}},
        origins="*" if wildcard else list(settings.cors_origins),
        send_wildcard=wildcard,
        supports_credentials=False,
        expose_headers=list(EXPOSED_HEADERS),
        max_age=_PREFLIGHT_MAX_AGE_S,
        always_send=False,
        vary_header=True,
    )
    if not wildcard:
        app.after_request(_vary_on_origin)


def _expose_result_headers(response: Response) -> Response:
    if "Access-Control-Allow-Origin" not in response.headers:
        return response
    names = list(EXPOSED_HEADERS)
    known = {n.lower() for n in names}
    for name, _ in response.headers.items():
        if name.lower().startswith("x-") and name.lower() not in known:
            names.append(name)
            known.add(name.lower())
    response.headers["Access-Control-Expose-Headers"] = ", ".join(names)
    return response


def _vary_on_origin(response: Response) -> Response:
    # The answer depends on Origin even with one allowed origin (flask-cors adds
    # Vary only for several), so a shared cache must not serve one origin's answer
    # to another.
    if request.path.startswith("/api/"):
        response.vary.add("Origin")
    return response
