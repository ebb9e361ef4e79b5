"""Alt text and SEO names for the images of a batch, within the request's deadline.

The calls of one batch run concurrently on a small pool: a provider answers in one to
a few seconds per image, so twenty images one after another would take the whole
request budget. Whatever has not answered when the deadline comes is given up: that
image is returned without AI (and is not charged), and the request is not held up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from feather_server.ai.languages import written_in
from feather_server.ai.names import seo_stem
from feather_server.ai.parse import UnusableAnswer, parse_answer
from feather_server.ai.prompt import ALT_TEXT_MAX, PromptInput, chat_messages, preview_data_uri
from feather_server.ai.provider import ChatProvider, ProviderConfig, ProviderError
from feather_server.errors import ApiError
from feather_server.settings import Settings

log = logging.getLogger("feather.ai")

# Calls in flight per batch: enough for a 20-image batch in ~4 rounds, few enough not
# to trip a hosted provider's rate limit or swamp a local GPU server.
MAX_CONCURRENT_CALLS = 6


R = TypeVar("R")


class AskLike(Protocol):
    """The AI fields of a request (``feather_server.ai.ask.AiAsk``)."""

    alt_text: bool
    rename: bool
    language: str
    context: str
    keywords: str


class DescribeFailed(Exception):
    """No usable alt text or name for this image (the image is still delivered)."""


@dataclass(frozen=True)
class Description:
    """What the AI said about one image: alt text (≤ 80 characters) and a name stem."""

    alt_text: str | None = None
    name: str | None = None  # an SEO stem without extension, e.g. "red-running-shoes"


def cap_alt_text(text: str, limit: int = ALT_TEXT_MAX) -> str:
    """``text`` within ``limit`` characters, cut after a whole word when it has spaces."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space >= limit // 2:  # Latin scripts; CJK text has no spaces and is cut as is
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—")


def _alt_text(raw: str | None, language: str) -> str | None:
    if not raw:
        return None
    text = cap_alt_text(raw)
    if not text or not any(c.isalpha() for c in text):
        return None
    if not written_in(text, language):
        log.info("AI alt text is not in %s; dropped", language)
        return None
    return text


class Describer:
    """Turns images into ``Description``s through a chat-completions provider."""

    def __init__(self, provider: ChatProvider,
                 max_concurrent: int = MAX_CONCURRENT_CALLS) -> None:
        self.provider = provider
        self.max_concurrent = max(1, max_concurrent)

    def describe(self, data: bytes, ask: AskLike, deadline: float | None = None
                 ) -> Description:
        """One image's description; raises DescribeFailed.

        ``deadline`` is a ``time.monotonic()`` instant the call must not outlive.
        """
        try:
            uri = preview_data_uri(data)
        except Exception as exc:
            raise DescribeFailed(f"no preview: {exc}") from exc
        prompt = PromptInput(ask.language, ask.context, ask.keywords)
        timeout = None if deadline is None else deadline - time.monotonic()
        try:
            text = self.provider.complete(chat_messages(prompt, uri), timeout)
            raw = parse_answer(text)
        except (ProviderError, UnusableAnswer) as exc:
            raise DescribeFailed(str(exc)) from exc
        alt = _alt_text(raw.alt_text, ask.language) if ask.alt_text else None
        name = None
        if ask.rename:
            # A model that forgot the name usually still described the image well.
            name = seo_stem(raw.file_name or "", ask.language) or (
                seo_stem(raw.alt_text or "", ask.language))
        if alt is None and name is None:
            raise DescribeFailed("the answer holds nothing usable for what was asked")
        return Description(alt_text=alt, name=name)

    def __call__(self, data: bytes, mime: str, name: str, ask: AskLike) -> Description:
        """The batch view's per-image hook; ``describe_all`` supplies the deadline."""
        return self.describe(data, ask, _deadline.get())

    def describe_batch(self, images: Sequence[bytes], ask: AskLike, deadline: float
                       ) -> list[Description | None]:
        """A description per image, None where the AI failed or the deadline passed."""
        jobs = [(data, "", "", ask) for data in images]
        return describe_all(self, jobs, deadline, self.max_concurrent)


# The deadline of the batch a pool thread is working for (None outside describe_all).
_deadline: ContextVar[float | None] = ContextVar("feather_ai_deadline", default=None)

Job = tuple[bytes, str, str, Any]  # output bytes, MIME type, original name, the AI ask


def describe_all(describer: Callable[[bytes, str, str, Any], R], jobs: Sequence[Job],
                 deadline: float, max_concurrent: int = MAX_CONCURRENT_CALLS
                 ) -> list[R | None]:
    """``describer(*job)`` for every job on a bounded pool; None where it raised or
    had not answered by ``deadline`` (a ``time.monotonic()`` instant).

    Returns by the deadline whatever the provider does. Calls still running then are
    abandoned; a ``Describer`` sees the deadline and bounds its own socket timeouts by
    it, so its threads end about then too.
    """
    if not jobs:
        return []

    def run(job: Job) -> R:
        _deadline.set(deadline)  # each pool thread has its own context
        return describer(*job)

    pool = ThreadPoolExecutor(max_workers=max(1, min(len(jobs), max_concurrent)),
                              thread_name_prefix="ai")
    try:
        futures = [pool.submit(run, job) for job in jobs]
        wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        results: list[R | None] = []
        late = 0
        for index, (job, future) in enumerate(zip(jobs, futures, strict=True)):
            label = job[2] or f"#{index}"
            if not future.done():
                future.cancel()
                late += 1
                results.append(None)
                continue
            try:
                results.append(future.result())
            except DescribeFailed as exc:
                log.warning("AI description of %s failed: %s", label, exc)
                results.append(None)
            except Exception:
                log.exception("AI description of %s crashed", label)
                results.append(None)
        if late:
            log.warning("AI descriptions of %d of %d images missed the deadline",
                        late, len(jobs))
        return results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def ai_deadline(request_deadline: float, request_timeout: float) -> float:
    """When the AI step of a request must be over: early enough to store the outputs
    and answer within the request's own deadline."""
    return request_deadline - min(2.0, request_timeout / 5)


NOT_CONFIGURED_MESSAGE = ("AI features are not configured on this server "
                          "(the operator has not set AI_BASE_URL and AI_MODEL).")


def provider_config(settings: Settings) -> ProviderConfig:
    return ProviderConfig(base_url=settings.ai_base_url, model=settings.ai_model,
                          api_key=settings.ai_api_key, timeout=settings.ai_timeout_ms / 1000)


def describer_for(settings: Settings) -> Describer | None:
    """The describer of a server whose operator set AI_BASE_URL and AI_MODEL, else None."""
    config = provider_config(settings)
    return Describer(ChatProvider(config)) if config.configured else None


def not_configured() -> ApiError:
    """403 ia_not_available: this server has no AI provider (buying credits would not help)."""
    return ApiError("AI_NOT_AVAILABLE", NOT_CONFIGURED_MESSAGE, flux_error="ia_not_available")
