"""The Feather dialect's answer: the encoded image, and its facts in ``X-*`` headers."""

from __future__ import annotations

import time

from flask import Request, Response, g

from feather_core import CompressOptions, CompressResult
from feather_server.filenames import content_disposition
from feather_server.http.uploads import Upload


def _reported_quality(result: CompressResult, options: CompressOptions) -> str:
    if result.quality is not None:
        return str(result.quality)
    if result.unchanged:
        # A file returned as it came keeps its own quality, which is not re-measured: a
        # PNG is lossless, anything else shows the asked quality.
        return "100" if result.format.name == "png" else str(options.quality)
    if options.quality_level is not None:
        return f"auto:{options.quality_level}"  # its score is in X-Output-Score
    return str(options.quality)


def accepted_image_types(req: Request) -> frozenset[str] | None:
    """The image types a client lists in ``Accept`` (q > 0), for ``outputFormat=auto``.

    ``image/*`` and ``*/*`` name nothing in particular: a client that lists no image type
    of its own (curl, most libraries) gets None, which means any.
    """
    listed = frozenset(kind.lower() for kind, quality in req.accept_mimetypes
                       if quality > 0 and kind.lower().startswith("image/")
                       and kind.lower() != "image/*")
    return listed or None


def image_response(upload: Upload, result: CompressResult, options: CompressOptions) -> Response:
    """The image of ``result`` with the headers the Feather document lists."""
    started = g.get("request_started", time.perf_counter())
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    response = Response(result.data, mimetype=result.format.mime)
    headers = response.headers
    headers["Content-Disposition"] = content_disposition(
        f"{upload.stem}-compressed.{result.format.extension}")
    headers["X-Original-Bytes"] = str(result.original_bytes)
    headers["X-Output-Bytes"] = str(result.output_bytes)
    headers["X-Output-Quality"] = _reported_quality(result, options)
    headers["X-Output-Width"] = str(result.width)
    headers["X-Output-Height"] = str(result.height)
    headers["X-Output-Format"] = result.format.name
    headers["X-Compression-Ratio"] = f"{result.ratio:.2f}"
    headers["X-Processing-Time-Ms"] = str(elapsed_ms)
    headers["X-Target-Met"] = "false" if result.target_met is False else "true"
    headers["X-Resized"] = "true" if result.resized else "false"
    headers["X-Iterations"] = str(result.iterations)
    headers["X-Output-Unchanged"] = "true" if result.unchanged else "false"
    if result.score is not None:
        headers["X-Output-Score"] = f"{result.score:.2f}"
    return response
