"""Which API dialect a request speaks.

``POST /api/compress`` answers in the FluxImage dialect (JSON) when the request is
plainly a FluxImage request: several ``file`` parts, the FluxImage-only ``format``
field, or an ``Accept`` header that wants JSON and not an image. Otherwise it
answers in the Feather dialect.
"""

from __future__ import annotations

from flask import Request


def wants_json(request: Request) -> bool:
    accept = request.accept_mimetypes
    json_quality = accept["application/json"]
    image_quality = max(accept["image/*"], accept["image/webp"], accept["image/jpeg"],
                        accept["image/png"], accept["image/avif"])
    # "*/*" alone gives both the same quality: that is no preference for JSON.
    return json_quality > 0 and json_quality > image_quality


def is_flux_request(request: Request) -> bool:
    """Whether an /api/compress request is a FluxImage batch request."""
    if len(request.files.getlist("file")) > 1:
        return True
    if "format" in request.form:
        return True
    return wants_json(request)
