"""Which API dialect a request speaks: the one rule, decided once per request.

Each view declares the dialect it speaks with ``@speaks``. ``/api/batch`` and the
usage and download endpoints speak FluxImage; ``/api/convert`` and everything else
Feather. ``POST /api/compress`` serves both documents, so its requests are told apart
by what they carry:

1. A request with a field only FluxImage has (``format``, ``sessionId``,
   ``autoAltText``, ``autoRenameSEO``, ``language``, ``aiContext``, ``seoKeywords``)
   and a field only Feather has (``outputFormat``) is refused with 400: it mixes the
   two documents and no answer could honour both. So is a request with several
   ``file`` parts and a Feather-only field (Feather takes one file).
2. A FluxImage-only field, or several ``file`` parts: FluxImage (JSON with download URLs).
3. A Feather-only field: Feather (the image bytes), whatever ``Accept`` says.
4. Otherwise an ``Accept`` header that prefers ``application/json`` to every image type
   means FluxImage; anything else, ``*/*`` and no header included, means Feather.

Every example of both documents therefore runs unchanged against one server, with or
without a key. Errors are rendered in the dialect decided here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from flask import Request, current_app, g, has_request_context, request

from feather_server.errors import ApiError
from feather_server.schema import FEATHER_ONLY, FLUX_ONLY

FEATHER: Literal["feather"] = "feather"
FLUX: Literal["flux"] = "flux"
NEGOTIATED: Literal["negotiated"] = "negotiated"
Declared = Literal["feather", "flux", "negotiated"]

V = TypeVar("V", bound=Callable[..., Any])


def speaks(dialect: Declared) -> Callable[[V], V]:
    """Declare the dialect of a view (``NEGOTIATED``: decided per request by the rule)."""

    def mark(view: V) -> V:
        view.feather_dialect = dialect  # type: ignore[attr-defined]
        return view

    return mark


def declared(endpoint: str | None) -> Declared:
    """The dialect a view declared (Feather for views that declared none)."""
    view = current_app.view_functions.get(endpoint or "")
    found: Declared = getattr(view, "feather_dialect", FEATHER)
    return found


def wants_json(req: Request) -> bool:
    """Whether ``Accept`` prefers JSON to every image type (``*/*`` alone does not)."""
    accept = req.accept_mimetypes
    json_quality = accept["application/json"]
    image_quality = max(accept["image/*"], accept["image/webp"], accept["image/jpeg"],
                        accept["image/png"], accept["image/avif"])
    return json_quality > 0 and json_quality > image_quality


def decide(req: Request) -> str:
    """The dialect of a request to a negotiated endpoint; 400 when it mixes the two."""
    form = req.form
    flux_fields = sorted(name for name in FLUX_ONLY if name in form)
    feather_fields = sorted(name for name in FEATHER_ONLY if name in form)
    files = [f for f in req.files.getlist("file") if f.filename or f.content_length]
    several_files = len(files) > 1
    if feather_fields and (flux_fields or several_files):
        flux_side = ", ".join(flux_fields) or "several file parts"
        raise ApiError(
            "INVALID_INPUT",
            f"The request mixes fields of the Feather API ({', '.join(feather_fields)}) with "
            f"fields of the FluxImage API ({flux_side}); send the fields of one of them",
            {name: "belongs to the Feather API" for name in feather_fields}
            | {name: "belongs to the FluxImage API" for name in flux_fields})
    if flux_fields or several_files:
        return FLUX
    if feather_fields:
        return FEATHER
    return FLUX if wants_json(req) else FEATHER


def is_flux_request(req: Request) -> bool:
    """Whether the rule, applied to what ``req`` holds so far (a form still being read
    included), says FluxImage; never raises (a request that mixes is answered as Feather)."""
    kind = declared(req.endpoint)
    if kind != NEGOTIATED:
        return kind == FLUX
    try:
        return decide(req) == FLUX
    except ApiError:
        return False


def settle() -> str:
    """Decide this request's dialect now (may raise the 400 of rule 1) and remember it."""
    found: str | None = g.get("dialect")
    if found is None:
        kind = declared(request.endpoint)
        found = decide(request) if kind == NEGOTIATED else kind
        g.dialect = found
    return found


def current() -> str:
    """This request's dialect, for rendering an answer; never raises.

    When an error comes before the dialect was settled (a 413 while reading the body,
    a 429), the rule is applied as far as the request allows, else Feather is assumed.
    """
    if not has_request_context():
        return FEATHER
    try:
        return settle()
    except Exception:  # noqa: BLE001 - an unreadable body: answer in the primary dialect
        kind = declared(request.endpoint)
        g.dialect = FEATHER if kind == NEGOTIATED else kind
        return str(g.dialect)
