"""Calling the core with the service's limits; shared by every endpoint that compresses."""

from __future__ import annotations

import concurrent.futures
import threading

from feather_server.settings import Settings, current_settings
from feather_core import CompressOptions, CompressResult, Limits, ProcessingTimeout, compress

# The core checks its deadline between steps, but one step (a big AVIF encode) cannot
# be interrupted. Running the job in a thread lets the request answer 504 on time
# anyway; the abandoned job stops at its next deadline check, so it cannot run on
# for long, and the sync worker serves its next request meanwhile.
_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_GRACE_SECONDS = 0.1


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:  # created lazily, so each gunicorn worker gets its own
            _executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="compress")
        return _executor


def limits_for(settings: Settings) -> Limits:
    return Limits(max_pixels=settings.max_pixels, max_frames=settings.max_frames,
                  timeout=settings.request_timeout)


def run_compress(data: bytes, options: CompressOptions) -> CompressResult:
    """Compress with the configured pixel, frame and time limits; 504 on time even mid-step."""
    settings = current_settings()
    limits = limits_for(settings)
    future = _pool().submit(compress, data, options, limits)
    try:
        return future.result(timeout=settings.request_timeout + _GRACE_SECONDS)
    except concurrent.futures.TimeoutError:
        raise ProcessingTimeout("Processing took longer than the time allowed") from None
