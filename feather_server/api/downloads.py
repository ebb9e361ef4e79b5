"""Signed downloads of stored outputs, one by one or a whole session as a zip.

Tampered links get 403, expired ones 410, both as JSON; the download carries the
output's type and a Content-Disposition with its newName.
"""

from __future__ import annotations

import io
import os
import time
import zipfile

from flask import Blueprint, Response, request, send_file

from feather_server.errors import ApiError
from feather_server.filenames import content_disposition
from feather_server.http.dialect import FLUX, speaks
from feather_server.storage import current_signer, current_store
from feather_server.storage.base import StoredObject

bp = Blueprint("downloads", __name__, url_prefix="/api")


def _not_found() -> ApiError:
    return ApiError("NOT_FOUND", "The file is no longer available")


@bp.get("/downloads/<scope>/<object_id>")
@speaks(FLUX)
def download(scope: str, object_id: str) -> Response:
    current_signer().verify(f"downloads/{scope}/{object_id}", request.args.get("expires"),
                            request.args.get("signature"))
    found = current_store().get(scope, object_id)  # StoreError: 503, by the registry
    if found is None or found[0].expires < time.time():
        # The signature was good, so the object existed: it has been swept.
        raise ApiError("GONE", "The download link has expired")
    obj, data = found
    response = send_file(io.BytesIO(data), mimetype=obj.mime, max_age=0)
    response.headers["Content-Disposition"] = content_disposition(obj.name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _unique_names(objects: list[StoredObject]) -> list[str]:
    """Zip entry names: the newNames, with ``-2``, ``-3`` ... where two are the same."""
    seen: dict[str, int] = {}
    names = []
    for obj in objects:
        stem, ext = os.path.splitext(obj.name)
        count = seen.get(obj.name.lower(), 0) + 1
        seen[obj.name.lower()] = count
        names.append(obj.name if count == 1 else f"{stem}-{count}{ext}")
    return names


@bp.get("/sessions/<session_file>")
@speaks(FLUX)
def session_zip(session_file: str) -> Response:
    if not session_file.endswith(".zip"):
        raise ApiError("NOT_FOUND", "Not found")
    session_id = session_file[: -len(".zip")]
    scope = request.args.get("scope", "")
    current_signer().verify(f"sessions/{session_id}/{scope}", request.args.get("expires"),
                            request.args.get("signature"))
    store = current_store()
    now = time.time()
    # A store that fails raises StoreError: 503 SERVICE_UNAVAILABLE, by the registry.
    objects = [o for o in store.list(scope) if o.expires >= now]
    buffer = io.BytesIO()
    written = 0
    # Images are already compressed: storing them is as small as deflating, and fast.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for obj, name in zip(objects, _unique_names(objects), strict=True):
            data = store.read(obj)
            if data is not None:
                archive.writestr(name, data)
                written += 1
    if not written:
        raise ApiError("GONE", "The outputs of this session have expired")
    buffer.seek(0)
    response = send_file(buffer, mimetype="application/zip", max_age=0)
    response.headers["Content-Disposition"] = content_disposition(session_file)
    response.headers["Cache-Control"] = "private, no-store"
    return response
