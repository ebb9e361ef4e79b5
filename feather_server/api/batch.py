"""POST /api/batch (and FluxImage requests to /api/compress): up to 20 images per request.

Each image is compressed in parallel, stored with an expiry, and answered with a
signed download URL. One bad image does not sink the batch: it is reported in an
extra ``errors`` array, and only the images that succeeded are charged.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from werkzeug.datastructures import FileStorage

from feather_server.accounts import MAX_BATCH_FILES, Caller, authenticate, charge, refund
from feather_server.ai import NameBook, ai_deadline, describe_all, not_configured, parse_language, seo_stem
from feather_server.http.errors import STATUS_BY_CODE, ApiError
from feather_server.schema import flux_options, parse_bool, uploaded_files
from feather_server.services.processing import limits_for
from feather_server.settings import Settings, current_settings
from feather_server.storage import Store, StoredObject, StoreError, current_signer, current_store
from feather_server.storage.sweeping import maybe_sweep
from feather_server.http.uploads import Upload
from feather_core import CompressOptions, CompressResult, Limits, compress
from feather_core.errors import FeatherError, InvalidOptions

bp = Blueprint("batch", __name__, url_prefix="/api")

AI_DESCRIBER = "feather.ai_describer"
_SESSION_ID = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,128}$")


@dataclass(frozen=True)
class AiAsk:
    """The AI fields of a request."""

    alt_text: bool = False
    rename: bool = False
    language: str = "English"
    context: str = ""
    keywords: str = ""

    @property
    def wanted(self) -> bool:
        return self.alt_text or self.rename


@dataclass(frozen=True)
class AiAnswer:
    """What the AI said about one image; None where it had nothing."""

    alt_text: str | None = None
    name: str | None = None


# The AI part registers a describer in app.extensions[AI_DESCRIBER]:
# describer(output bytes, mime, original name, ask) -> AiAnswer; it may raise.
AiDescriber = Callable[[bytes, str, str, AiAsk], AiAnswer]


@dataclass(frozen=True)
class Outcome:
    """One image of the batch: a stored output, or an error."""

    upload: Upload
    stored: StoredObject | None = None
    result: CompressResult | None = None
    alt_text: str | None = None
    ai_charged: bool = False
    error_code: str | None = None
    error_message: str | None = None


def _too_large(name: str, settings: Settings) -> ApiError:
    message = f"File {name} exceeds the {settings.max_upload_mb:g}MB limit"
    return ApiError("FILE_TOO_LARGE", message, status=400, flux_error=message)


def _read(part: FileStorage, settings: Settings) -> Upload:
    limit = settings.max_upload_bytes
    data = part.stream.read(limit + 1)
    name = part.filename or "image"
    if len(data) > limit:
        raise _too_large(name, settings)
    return Upload(data=data, filename=name)


def _ai_ask() -> AiAsk:
    form = request.form
    errors: dict[str, str] = {}
    flags = {}
    for field in ("autoAltText", "autoRenameSEO"):
        raw = form.get(field, "").strip()
        try:
            flags[field] = parse_bool(raw) if raw else False
        except ValueError as exc:
            errors[field] = str(exc)
    if errors:
        raise InvalidOptions("Invalid options", errors)
    return AiAsk(alt_text=flags["autoAltText"], rename=flags["autoRenameSEO"],
                 language=parse_language(form.get("language")),
                 context=form.get("aiContext", "").strip(),
                 keywords=form.get("seoKeywords", "").strip())


def _session_id() -> str:
    raw = request.form.get("sessionId", "").strip()
    if not raw:
        return uuid.uuid4().hex
    if not _SESSION_ID.match(raw):
        raise InvalidOptions("Invalid options", {
            "sessionId": "must be 1-128 characters without slashes or control characters"})
    return raw


def _new_name(upload: Upload, result: CompressResult, ai_name: str | None,
              names: NameBook | None = None) -> str:
    stem = upload.stem
    if ai_name:
        stem = seo_stem(ai_name) or stem
    if names is not None:  # SEO names: unique within the batch and the session
        return names.claim(stem, result.format.extension)
    return f"{stem}.{result.format.extension}"


def _compress_one(upload: Upload, options: CompressOptions, limits: Limits,
                  deadline: float) -> Outcome:
    """Compress one image; never raises."""
    try:
        remaining = max(0.05, deadline - time.monotonic())
        result = compress(upload.data, options,
                          Limits(limits.max_pixels, limits.max_frames, remaining))
    except FeatherError as exc:
        return Outcome(upload, error_code=exc.code, error_message=exc.message)
    except Exception:  # noqa: BLE001 - one image must not sink the batch
        current_app.logger.exception("batch image %s failed", upload.filename)
        return Outcome(upload, error_code="PROCESSING_FAILED",
                       error_message="The image could not be processed")
    return Outcome(upload, result=result)


def _store_one(done: Outcome, answer: AiAnswer | None, name: str, store: Store, scope: str,
               expires: int, ask: AiAsk) -> Outcome:
    """Store one compressed image under its final name; never raises."""
    upload, result = done.upload, done.result
    if result is None:
        return done
    answer = answer or AiAnswer()
    ai_charged = bool(answer.alt_text or answer.name)
    try:
        stored = store.put(scope, result.data, name, result.format.mime, expires)
    except StoreError as exc:
        current_app.logger.error("storing %s failed: %s", upload.filename, exc)
        return Outcome(upload, error_code="SERVICE_UNAVAILABLE",
                       error_message="The output could not be stored")
    return Outcome(upload, stored=stored, result=result,
                   alt_text=answer.alt_text if ask.alt_text else None, ai_charged=ai_charged)


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


def _item(outcome: Outcome, url: str) -> dict[str, Any]:
    assert outcome.stored is not None and outcome.result is not None
    item: dict[str, Any] = {
        "originalName": outcome.upload.filename,
        "newName": outcome.stored.name,
        "originalSize": len(outcome.upload.data),
        "optimizedSize": outcome.result.output_bytes,
        "downloadUrl": url,
    }
    if outcome.alt_text:
        item["altText"] = outcome.alt_text[:80]
    return item


@bp.post("/batch")
def batch() -> Response:
    g.dialect = "flux"
    settings = current_settings()
    caller: Caller = authenticate()
    parts = uploaded_files(request.files)
    if len(parts) > MAX_BATCH_FILES:
        message = f"Maximum {MAX_BATCH_FILES} images allowed per batch"
        raise ApiError("INVALID_INPUT", message, flux_error=message)
    if not parts:
        raise ApiError("INVALID_INPUT", "At least one file is required",
                       {"file": "is required"})
    uploads = [_read(part, settings) for part in parts]
    mark_parts = uploaded_files(request.files, "watermarkFile")
    mark = _read(mark_parts[0], settings).data if mark_parts and caller.may_watermark else None
    options = flux_options(request.form, watermark_file=mark)
    ask = _ai_ask()
    session_id = _session_id()
    if ask.wanted and caller.paid and current_app.extensions.get(AI_DESCRIBER) is None:
        raise not_configured()  # before charging: buying credits would not help

    count = len(uploads)
    reservation = charge(caller, compressions=count, ai=count if ask.wanted else 0)
    outcomes: list[Outcome] = []
    try:
        outcomes = _run(uploads, options, settings, caller, session_id, ask)
    finally:
        failed = count - sum(1 for o in outcomes if o.stored is not None)
        ai_unused = (count - sum(1 for o in outcomes if o.ai_charged)) if ask.wanted else 0
        refund(reservation, compressions=failed, ai=ai_unused)
    return _respond(outcomes, settings, session_id)


def _run(uploads: list[Upload], options: CompressOptions, settings: Settings,
         caller: Caller, session_id: str, ask: AiAsk) -> list[Outcome]:
    store = current_store()
    scope = current_signer().scope(caller.owner, session_id)
    expires = int(time.time()) + settings.download_ttl_seconds
    limits = limits_for(settings)
    deadline = time.monotonic() + settings.request_timeout
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def parallel(work: Callable[..., Outcome], *items: list[Any]) -> list[Outcome]:
        def in_app(*args: Any) -> Outcome:
            with app.app_context():
                return work(*args)

        workers = max(1, min(len(items[0]), os.cpu_count() or 2))
        if workers == 1:
            return [in_app(*args) for args in zip(*items, strict=True)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") as pool:
            return list(pool.map(in_app, *items))

    # Compress on the cores, then ask the AI about every output at once (network-bound,
    # bounded pool, within the deadline), then name and store.
    done = parallel(lambda u: _compress_one(u, options, limits, deadline), uploads)
    answers = _describe(done, ask, deadline, settings)
    names = NameBook(o.name for o in store.list(scope)) if ask.rename else None
    final = [_new_name(o.upload, o.result, a.name if a and ask.rename else None, names)
             if o.result is not None else "" for o, a in zip(done, answers, strict=True)]
    outcomes = parallel(lambda o, a, n: _store_one(o, a, n, store, scope, expires, ask),
                        done, answers, final)
    maybe_sweep(store, settings)
    g.batch_scope, g.batch_expires = scope, expires
    return outcomes


def _describe(done: list[Outcome], ask: AiAsk, deadline: float, settings: Settings
              ) -> list[AiAnswer | None]:
    """The AI's answer per image (None where it failed, was late, or was not asked)."""
    describer: AiDescriber | None = current_app.extensions.get(AI_DESCRIBER)
    answers: list[AiAnswer | None] = [None] * len(done)
    if not ask.wanted or describer is None:
        return answers
    wanted = [i for i, o in enumerate(done) if o.result is not None]
    jobs = [(r.data, r.format.mime, done[i].upload.filename, ask)
            for i in wanted if (r := done[i].result) is not None]
    found = describe_all(describer, jobs, ai_deadline(deadline, settings.request_timeout))
    for index, answer in zip(wanted, found, strict=True):
        answers[index] = answer
    return answers


def _respond(outcomes: list[Outcome], settings: Settings, session_id: str) -> Response:
    store = current_store()
    data = [_item(o, _download_url(store, o.stored, settings))
            for o in outcomes if o.stored is not None]
    errors = [{"name": o.upload.filename, "code": o.error_code, "message": o.error_message}
              for o in outcomes if o.stored is None]
    if not data:
        first = errors[0]
        code = str(first["code"])
        body = {"error": code, "message": first["message"], "errors": errors}
        response = jsonify(body)
        response.status_code = STATUS_BY_CODE.get(code, 500)
        return response
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = errors
    body["sessionId"] = session_id
    body["sessionZipUrl"] = session_zip_url(session_id, g.batch_scope, g.batch_expires,
                                            settings)
    return jsonify(body)


def init_app(app: Any) -> None:
    app.register_blueprint(bp)
