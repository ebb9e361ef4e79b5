"""POST /api/batch (and FluxImage requests to /api/compress): up to 20 images per request.

Each image is compressed on the job processes, stored with an expiry and answered with
a signed download URL. Images that fail are listed in an extra ``errors`` array; only
the images delivered are charged.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from feather_server import schema
from feather_server.accounts import Caller, charge, idempotency, refund
from feather_server.ai.describe import not_configured
from feather_server.errors import RETRY_AFTER_SECONDS, ApiError, status_of
from feather_server.http.dialect import FLUX, speaks
from feather_server.http.idempotent import once_per_key
from feather_server.http.observability import request_deadline
from feather_server.http.policy import authenticated, rate_limited, takes_batch
from feather_server.http.uploads import Upload, read_upload, uploaded_files
from feather_server.services import batch as batches
from feather_server.settings import Settings, current_settings
from feather_server.storage import Store, StoredObject, current_signer, current_store

bp = Blueprint("batch", __name__, url_prefix="/api")

AI_DESCRIBER = "feather.ai_describer"


@bp.post("/batch")
@rate_limited
@takes_batch
@speaks(FLUX)
def batch() -> Response:
    return flux_batch()


@authenticated
def flux_batch(caller: Caller) -> Response:
    """A FluxImage batch request, from parsing to the JSON answer; with an
    ``Idempotency-Key``, a retry gets the first answer and is not charged again."""
    settings = current_settings()
    deadline = request_deadline(settings.request_timeout)
    order = _order(caller, settings)
    return once_per_key(caller, lambda: _fingerprint(order),
                        lambda: _deliver(caller, order, settings, deadline),
                        lambda record: _render(record, settings))


def _deliver(caller: Caller, order: batches.Order, settings: Settings,
             deadline: float) -> dict[str, Any]:
    """Charge, run the batch, settle; the record of what was delivered."""
    describer = current_app.extensions.get(AI_DESCRIBER)
    if order.ask.wanted and caller.paid and describer is None:
        raise not_configured()  # before charging: buying credits would not help
    count = len(order.uploads)
    ai = count if order.ask.wanted else 0
    reservation = charge(caller, settings, compressions=count, ai=ai)
    delivery: batches.Delivery | None = None
    try:
        delivery = batches.run(order, settings=settings, store=current_store(),
                               describer=describer, deadline=deadline)
    finally:
        stored = delivery.stored if delivery else 0
        described = delivery.described if delivery else 0
        refund(reservation, settings, compressions=count - stored,
               ai=(ai - described) if ai else 0)
    return _record(order, delivery)


def _fingerprint(order: batches.Order) -> str:
    files = [(part.name or "file", upload.filename, _digest(upload))
             for part, upload in zip(uploaded_files(), order.uploads, strict=True)]
    marks = [("watermarkFile", m.filename or "", hashlib.sha256(m.stream.read()).hexdigest())
             for m in uploaded_files("watermarkFile")]
    for mark in uploaded_files("watermarkFile"):
        mark.stream.seek(0)
    return idempotency.fingerprint(request.path, request.form.items(multi=True), files + marks)


def _digest(upload: Upload) -> str:
    if upload.data is not None:
        return hashlib.sha256(upload.data).hexdigest()
    digest = hashlib.sha256()
    with open(str(upload.path), "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _too_large(name: str, settings: Settings) -> ApiError:
    message = f"File {name} exceeds the {settings.max_upload_mb:g}MB limit"
    return ApiError("FILE_TOO_LARGE", message, status=400, flux_error=message)


def _read(part: Any, settings: Settings) -> Upload:
    try:
        return read_upload(part, settings.max_upload_bytes)
    except ApiError as exc:
        if exc.code == "FILE_TOO_LARGE":
            raise _too_large(part.filename or "image", settings) from exc
        raise


def _order(caller: Caller, settings: Settings) -> batches.Order:
    parts = uploaded_files()
    if len(parts) > schema.MAX_BATCH_FILES:
        message = f"Maximum {schema.MAX_BATCH_FILES} images allowed per batch"
        raise ApiError("INVALID_INPUT", message, flux_error=message)
    if not parts:
        raise ApiError("INVALID_INPUT", "At least one file is required",
                       {"file": "is required"})
    uploads = [_read(part, settings) for part in parts]
    marks = uploaded_files("watermarkFile")
    mark = _read(marks[0], settings).read() if marks and caller.may_watermark else None
    values = schema.read_values(request.form, FLUX)
    session_id = values.get("sessionId") or uuid.uuid4().hex
    return batches.Order(
        uploads=uploads,
        options=schema.compress_options(values, FLUX, watermark=mark),
        ask=schema.ai_ask(values),
        session_id=session_id,
        scope=current_signer().scope(caller.owner, session_id),
    )


def _base_url(settings: Settings) -> str:
    return (settings.public_url or request.host_url).rstrip("/")


def _download_url(store: Store, obj: StoredObject, settings: Settings) -> str:
    path = f"downloads/{obj.scope}/{obj.object_id}"
    local = url_for("downloads.download", scope=obj.scope, object_id=obj.object_id)
    feather_url = f"{_base_url(settings)}{local}?{current_signer().query(path, obj.expires)}"
    return store.download_url(obj, feather_url)


def session_zip_url(session_id: str, scope: str, expires: int, settings: Settings) -> str:
    path = f"sessions/{session_id}/{scope}"
    local = url_for("downloads.session_zip", session_file=f"{session_id}.zip")
    return (f"{_base_url(settings)}{local}?scope={scope}&"
            f"{current_signer().query(path, expires)}")


def _record(order: batches.Order, delivery: batches.Delivery | None) -> dict[str, Any]:
    """What a batch delivered, as JSON: enough to answer it again with fresh links."""
    assert delivery is not None
    outcomes = delivery.outcomes
    items = []
    for o in outcomes:
        if o.stored is None or o.result is None:
            continue
        item: dict[str, Any] = {
            "originalName": o.upload.filename, "newName": o.stored.name,
            "originalSize": o.upload.size, "optimizedSize": o.result.output_bytes,
            "object": {"scope": o.stored.scope, "id": o.stored.object_id,
                       "mime": o.stored.mime, "expires": o.stored.expires},
        }
        if o.alt_text:
            item["altText"] = o.alt_text[:80]
        items.append(item)
    errors = [{"name": o.upload.filename, "code": o.error_code, "message": o.error_message}
              for o in outcomes if o.stored is None]
    if not items:
        first = errors[0]
        code = str(first["code"])
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)} if code == "SERVICE_UNAVAILABLE" else {}
        raise ApiError(code, str(first["message"]), status=status_of(code), headers=retry,
                       extra={"errors": errors})
    return {"items": items, "errors": errors, "sessionId": order.session_id,
            "scope": order.scope, "expires": delivery.expires}


def _render(record: dict[str, Any], settings: Settings) -> Response:
    """The FluxImage answer of a record, every download link signed now."""
    store = current_store()
    data = []
    for item in record["items"]:
        found = item["object"]
        obj = StoredObject(scope=found["scope"], object_id=found["id"], name=item["newName"],
                           mime=found["mime"], size=item["optimizedSize"],
                           expires=found["expires"])
        shown = {k: v for k, v in item.items() if k != "object"}
        shown["downloadUrl"] = _download_url(store, obj, settings)
        data.append(shown)
    body: dict[str, Any] = {"data": data}
    if record["errors"]:
        body["errors"] = record["errors"]
    body["sessionId"] = record["sessionId"]
    body["sessionZipUrl"] = session_zip_url(record["sessionId"], record["scope"],
                                            record["expires"], settings)
    return jsonify(body)
