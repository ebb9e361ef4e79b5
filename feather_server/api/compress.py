"""POST /api/compress and POST /api/convert in the Feather dialect."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, g, request

from feather_server.http import dialect
from feather_server.http.errors import ApiError
from feather_server.schema import feather_options, uploaded_files
from feather_server.services.processing import run_compress
from feather_server.settings import current_settings
from feather_server.http.uploads import Upload, content_disposition, read_upload

bp = Blueprint("compress", __name__, url_prefix="/api")


def _single_upload() -> Upload:
    files = uploaded_files(request.files)
    if not files:
        raise ApiError("INVALID_INPUT", "A file is required", {"file": "is required"})
    return read_upload(files[0], current_settings().max_upload_bytes)


def _watermark_bytes() -> bytes | None:
    parts = uploaded_files(request.files, "watermarkFile")
    if not parts or not g.get("watermark_allowed", True):  # a free plan's key: ignored
        return None
    return read_upload(parts[0], current_settings().max_upload_bytes).data


@bp.post("/compress")
def compress() -> Response:
    if dialect.is_flux_request(request):
        batch = current_app.view_functions.get("batch.batch")
        if batch is not None:
            return batch()  # type: ignore[no-any-return]
    return _feather(convert=False)


@bp.post("/convert")
def convert() -> Response:
    return _feather(convert=True)


def _feather(*, convert: bool) -> Response:
    started = time.monotonic()
    g.dialect = "feather"
    upload = _single_upload()
    options = feather_options(request.form, convert=convert, watermark_file=_watermark_bytes())
    result = run_compress(upload.data, options)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    name = f"{upload.stem}-compressed.{result.format.extension}"
    response = Response(result.data, mimetype=result.format.mime)
    headers = response.headers
    headers["Content-Disposition"] = content_disposition(name)
    headers["X-Original-Bytes"] = str(result.original_bytes)
    headers["X-Output-Bytes"] = str(result.output_bytes)
    headers["X-Output-Quality"] = str(result.quality if result.quality is not None
                                      else _reported_quality(result.format.name,
                                                             options.quality))
    headers["X-Output-Width"] = str(result.width)
    headers["X-Output-Height"] = str(result.height)
    headers["X-Output-Format"] = result.format.name
    headers["X-Compression-Ratio"] = f"{result.ratio:.2f}"
    headers["X-Processing-Time-Ms"] = str(elapsed_ms)
    headers["X-Target-Met"] = "false" if result.target_met is False else "true"
    headers["X-Resized"] = "true" if result.resized else "false"
    headers["X-Iterations"] = str(result.iterations)
    headers["X-Output-Unchanged"] = "true" if result.unchanged else "false"
    return response


def _reported_quality(fmt: str, asked: int) -> int:
    # PNG is lossless: its output quality is 100 whatever was asked. A file returned
    # unchanged keeps its own quality, which is not re-measured; the asked one is shown.
    return 100 if fmt == "png" else asked
