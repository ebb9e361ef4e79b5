"""POST /api/compress and POST /api/convert: one image in, the encoded image back.

``/api/compress`` also serves the FluxImage document's compress endpoint: the dialect
rule (``feather_server.http.dialect``) sends FluxImage-shaped requests to the batch.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from feather_server import schema
from feather_server.accounts import Caller
from feather_server.api.batch import flux_batch
from feather_server.http import dialect
from feather_server.http.dialect import FEATHER, FLUX, NEGOTIATED, speaks
from feather_server.http.observability import request_deadline
from feather_server.http.policy import charged, rate_limited, takes_batch
from feather_server.http.responses import accepted_image_types, image_response
from feather_server.http.uploads import optional_upload, single_upload
from feather_server.services import processing
from feather_server.settings import current_settings

bp = Blueprint("compress", __name__, url_prefix="/api")


@bp.post("/compress")
@rate_limited
@takes_batch
@speaks(NEGOTIATED)
def compress() -> Response:
    if dialect.settle() == FLUX:
        return flux_batch()
    return feather_compress(convert=False)


@bp.after_request
def _vary_on_accept(response: Response) -> Response:
    # Accept chooses the dialect of /api/compress and the format ``auto`` picks: a cache
    # must not give one client's answer to another.
    if request.endpoint == "compress.compress":
        response.vary.add("Accept")
    return response


@bp.post("/convert")
@rate_limited
@speaks(FEATHER)
def convert() -> Response:
    return feather_compress(convert=True)


@charged(compressions=1)
def feather_compress(caller: Caller, *, convert: bool) -> Response:
    upload = single_upload()
    mark = optional_upload("watermarkFile") if caller.may_watermark else None
    values = schema.read_values(request.form, FEATHER)
    options = schema.compress_options(values, FEATHER, convert=convert,
                                      watermark=mark.read() if mark else None,
                                      accept=accepted_image_types(request))
    deadline = request_deadline(current_settings().request_timeout)
    return image_response(upload, processing.compress(upload.read(), options, deadline), options)
