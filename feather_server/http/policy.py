"""What a view needs, declared where it is defined.

    @bp.post("/convert")
    @rate_limited
    @speaks(FEATHER)
    def convert() -> Response: ...

- ``@rate_limited``: the request spends one of the client IP's per-minute budget
  (``feather_server.http.ratelimit`` reads the mark). A preview (``mode=preview``, one
  file) spends the client's preview budget instead (``RATE_LIMIT_PREVIEWS_PER_MINUTE``),
  so a page's live previews never use up the budget of real work (``budget_of``).
- ``@takes_batch``: the request may carry a FluxImage batch (20 files of MAX_UPLOAD_MB
  and a watermark), so its body limit is raised before anything reads it.
- ``@speaks(...)`` (``feather_server.http.dialect``): the dialect of answers and errors.
- ``@authenticated``: the function receives the ``Caller`` (key holder or anonymous).
- ``@charged(compressions=1)``: the same, and one compression is reserved before the
  work and given back when the answer is an error, whatever the error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, request

from feather_server.accounts import Caller, authenticate, charge, refund
from feather_server.accounts.auth import unauthorized
from feather_server.http.request import spool_every_file
from feather_server.schema import MAX_BATCH_FILES
from feather_server.settings import Settings, current_settings

V = TypeVar("V", bound=Callable[..., Any])


def rate_limited(view: V) -> V:
    """Mark a view as one whose requests spend the client's rate-limit budget."""
    view.feather_rate_limited = True  # type: ignore[attr-defined]
    return view


def takes_batch(view: V) -> V:
    """Mark a view as one that may receive a FluxImage batch of files."""
    view.feather_takes_batch = True  # type: ignore[attr-defined]
    return view


def is_rate_limited(view: object) -> bool:
    return bool(getattr(view, "feather_rate_limited", False))


WORK = "work"
PREVIEWS = "previews"


def budget_of(view: object, settings: Settings) -> str | None:
    """Which per-minute budget the current request to ``view`` spends: ``PREVIEWS`` for a
    preview of one image to a rate-limited view (when the operator gives previews a budget
    of their own), ``WORK`` for any other request to it, None when it is not limited.

    Telling a preview needs its form, so the body of a multipart request no larger than
    one image's is read here, before the limit is checked; larger or unsized bodies are
    never previews, and are refused (when over the limit) before a byte of them is read.
    """
    if not is_rate_limited(view) or request.method == "OPTIONS":
        return None
    if (not settings.rate_limit_previews_per_minute or request.method != "POST"
            or request.mimetype != "multipart/form-data" or request.content_length is None
            or request.content_length > single_request_limit(settings)):
        return WORK
    modes = {mode.strip().lower() for mode in request.form.getlist("mode") if mode.strip()}
    files = [f for f in request.files.getlist("file") if f.filename or f.content_length]
    return PREVIEWS if modes == {"preview"} and len(files) == 1 else WORK


def single_request_limit(settings: Settings) -> int:
    """Bytes one file, a watermark and the fields may take."""
    return 2 * settings.max_upload_bytes + 2_000_000


def batch_request_limit(settings: Settings) -> int:
    """Bytes a full batch may take: every file at its limit, a watermark, the fields."""
    return (MAX_BATCH_FILES + 1) * settings.max_upload_bytes + 2_000_000


def bearer_token() -> str | None:
    """The request's ``Authorization: Bearer`` token; 401 for any other scheme."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized()
    return token.strip()


def authenticated(function: Callable[..., Response]) -> Callable[..., Response]:
    """Call ``function(caller, ...)`` with the request's caller (401 for a bad key)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        caller = authenticate(bearer_token(), current_settings())
        return function(caller, *args, **kwargs)

    return wrapper


def charged(*, compressions: int) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Like ``authenticated``, reserving ``compressions`` that an error answer gives back."""

    def decorate(function: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            settings = current_settings()
            caller: Caller = authenticate(bearer_token(), settings)
            reservation = charge(caller, settings, compressions=compressions)
            try:
                response = function(caller, *args, **kwargs)
            except BaseException:
                refund(reservation, settings, compressions=compressions)
                raise
            if response.status_code >= 400:
                refund(reservation, settings, compressions=compressions)
            return response

        return wrapper

    return decorate


def init_app(app: Flask) -> None:
    """Apply the body limit a view declared before anything reads the body."""
    settings: Settings = app.config["FEATHER"]
    app.config["MAX_CONTENT_LENGTH"] = single_request_limit(settings)

    @app.before_request
    def _body_limit() -> None:
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, "feather_takes_batch", False):
            request.max_content_length = batch_request_limit(settings)
            if getattr(view, "feather_dialect", None) == "flux":
                spool_every_file()  # a batch for sure: its files wait on disk, not in memory
