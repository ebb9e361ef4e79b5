"""A FluxImage batch: compress every image, describe, name, store. No request, no ``g``.

The steps, each bounded by the request's deadline:

1. compress on the job processes (``services.processing``): images not done by the
   deadline are killed and reported as ``TIMEOUT``;
2. ask the AI about every output at once (network-bound, a bounded pool), when asked;
3. name each output (SEO names unique within the batch and the session);
4. store each output under its name, with an expiry.

One bad image does not sink the batch: each ends as an ``Outcome`` with its stored
object or its error, and the caller charges only what was delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from feather_core import CompressOptions, CompressResult
from feather_core.errors import FeatherError
from feather_core.runner import JobInput
from feather_server.accounts import housekeeping
from feather_server.ai.ask import AiAsk
from feather_server.ai.describe import Description, ai_deadline, describe_all
from feather_server.ai.names import NameBook, seo_stem
from feather_server.http.uploads import Upload
from feather_server.metrics import count_delivered, metrics
from feather_server.services import processing
from feather_server.settings import Settings
from feather_server.storage.base import Store, StoredObject, StoreError
from feather_server.storage.sweeping import maybe_sweep

log = logging.getLogger("feather.batch")

# describer(output bytes, mime, original name, ask) -> Description; it may raise.
AiDescriber = Callable[[bytes, str, str, AiAsk], Description]
# Storing twenty outputs is quick, but it must still fit in the request's time.
STORE_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class Order:
    """What a batch request asks for, parsed."""

    uploads: Sequence[Upload]
    options: CompressOptions
    ask: AiAsk
    session_id: str
    scope: str  # the storage folder of this owner's session


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


@dataclass(frozen=True)
class Delivery:
    """Every image's outcome, and when the stored outputs expire."""

    outcomes: list[Outcome]
    expires: int

    @property
    def stored(self) -> int:
        return sum(1 for o in self.outcomes if o.stored is not None)

    @property
    def described(self) -> int:
        return sum(1 for o in self.outcomes if o.ai_charged)


def run(order: Order, *, settings: Settings, store: Store, describer: AiDescriber | None,
        deadline: float) -> Delivery:
    """Compress, describe, name and store every image of ``order`` by ``deadline``."""
    expires = int(time.time()) + settings.download_ttl_seconds
    compressed = _compress(order, settings, deadline)
    answers = _describe(compressed, order.ask, describer, deadline, settings)
    names = _names(order, compressed, answers, store)
    outcomes = _parallel(
        lambda o, a, n: _store_one(o, a, n, store, order.scope, expires, order.ask),
        compressed, answers, names)
    maybe_sweep(store, settings, also=lambda: housekeeping.tidy(settings))
    return Delivery(outcomes, expires)


def _compress(order: Order, settings: Settings, deadline: float) -> list[Outcome]:
    # Spooled files are read by the job processes themselves, straight from disk.
    sources = [JobInput(data=u.data, path=u.path) for u in order.uploads]
    results = processing.compress_all(sources, order.options,
                                      deadline - STORE_MARGIN_SECONDS, settings)
    outcomes = []
    for upload, result in zip(order.uploads, results, strict=True):
        if isinstance(result, FeatherError):
            if result.code in ("PROCESSING_FAILED", "INTERNAL_ERROR"):
                log.error("batch image %s failed: %s", upload.filename, result.message)
            outcomes.append(Outcome(upload, error_code=result.code,
                                    error_message=result.message))
        else:
            outcomes.append(Outcome(upload, result=result))
    return outcomes


def _describe(done: list[Outcome], ask: AiAsk, describer: AiDescriber | None,
              deadline: float, settings: Settings) -> list[Description | None]:
    """The AI's answer per image (None where it failed, was late, or was not asked)."""
    answers: list[Description | None] = [None] * len(done)
    if not ask.wanted or describer is None:
        return answers
    wanted = [i for i, o in enumerate(done) if o.result is not None]
    jobs = [(r.data, r.format.mime, done[i].upload.filename, ask)
            for i in wanted if (r := done[i].result) is not None]
    found = describe_all(describer, jobs, ai_deadline(deadline, settings.request_timeout))
    for index, answer in zip(wanted, found, strict=True):
        answers[index] = answer
        metrics().ai_calls.labels("ok" if answer is not None else "failed").inc()
    return answers


def _names(order: Order, done: list[Outcome], answers: list[Description | None],
           store: Store) -> list[str]:
    """Each output's file name: the upload's (or the AI's SEO) stem and the new extension."""
    book = None
    if order.ask.rename:
        try:
            book = NameBook(o.name for o in store.list(order.scope))
        except StoreError:
            book = NameBook()
    names = []
    for outcome, answer in zip(done, answers, strict=True):
        result = outcome.result
        if result is None:
            names.append("")
            continue
        stem = outcome.upload.stem
        if order.ask.rename and answer is not None and answer.name:
            stem = seo_stem(answer.name) or stem
        extension = result.format.extension
        names.append(book.claim(stem, extension) if book is not None else f"{stem}.{extension}")
    return names


def _store_one(done: Outcome, answer: Description | None, name: str, store: Store, scope: str,
               expires: int, ask: AiAsk) -> Outcome:
    """Store one compressed image under its final name; never raises."""
    upload, result = done.upload, done.result
    if result is None:
        return done
    answer = answer or Description()
    ai_charged = bool(answer.alt_text or answer.name)
    try:
        stored = store.put(scope, result.data, name, result.format.mime, expires)
    except StoreError as exc:
        log.error("storing %s failed: %s", upload.filename, exc)
        return Outcome(upload, error_code="SERVICE_UNAVAILABLE",
                       error_message="The output could not be stored")
    count_delivered(result.format.name, upload.size, result.output_bytes)
    return Outcome(upload, stored=stored, result=result,
                   alt_text=answer.alt_text if ask.alt_text else None, ai_charged=ai_charged)


def _parallel(work: Callable[[Outcome, Description | None, str], Outcome],
              done: list[Outcome], answers: list[Description | None],
              names: list[str]) -> list[Outcome]:
    # Writes to a bucket are network-bound: a few at once.
    if len(done) <= 1:
        return [work(*args) for args in zip(done, answers, names, strict=True)]
    with ThreadPoolExecutor(max_workers=min(len(done), 8), thread_name_prefix="store") as pool:
        return list(pool.map(work, done, answers, names))
