"""Image work of the service: every job runs in a job process, on the request's clock.

A gunicorn worker never decodes or encodes itself. Its ``JobRunner``
(``feather_core.runner``) keeps ``JOB_PROCESSES`` job processes, each under
``MAX_JOB_MEMORY_MB``; a job past the request's deadline is killed at once and the
answer is 504, a job over its memory dies alone (422 or 500). The worker serves the
next request meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from feather_core import CompressOptions, CompressResult, Limits
from feather_core.errors import FeatherError
from feather_core.runner import JobInput, JobRunner, default_memory_limit, wait_all
from feather_server.metrics import count_delivered, job_outcome, metrics
from feather_server.settings import Settings, current_settings

_runners: dict[tuple[int, int], JobRunner] = {}
_lock = threading.Lock()


def limits_for(settings: Settings) -> Limits:
    return Limits(max_pixels=settings.max_pixels, max_frames=settings.max_frames,
                  timeout=settings.request_timeout)


def memory_limit(settings: Settings) -> int:
    """Bytes a job process may use: MAX_JOB_MEMORY_MB, or what MAX_PIXELS needs."""
    if settings.max_job_memory_mb:
        return settings.max_job_memory_mb * 1024 * 1024
    return default_memory_limit(settings.max_pixels)


def runner_for(settings: Settings) -> JobRunner:
    """This process's job runner for these settings (its pool starts on first use)."""
    key = (settings.job_process_count, memory_limit(settings))
    with _lock:
        runner = _runners.get(key)
        if runner is None:
            runner = _runners[key] = JobRunner(*key)
        return runner


def _nothing() -> None:
    """A job that does nothing: submitting it starts the job processes."""


def warm_up(settings: Settings, wait: float = 60.0) -> None:
    """Start the job processes of this process, and wait (up to ``wait`` seconds) until
    they take jobs: a worker takes no request before it can do the work, so no early
    request spends its deadline waiting for the fork server to import the codecs."""
    runner_for(settings).submit_call(_nothing).result(timeout=wait)


def shutdown() -> None:
    """Stop every job process of this process (a worker that exits calls it)."""
    with _lock:
        runners = list(_runners.values())
        _runners.clear()
    for runner in runners:
        runner.close()


def compress(data: bytes, options: CompressOptions, deadline: float,
             settings: Settings | None = None) -> CompressResult:
    """Compress one image within the configured pixel, frame and memory limits, in a job
    process killed at ``deadline`` (a ``time.monotonic()`` instant)."""
    settings = settings or current_settings()
    job = runner_for(settings).submit(JobInput(data=data), options, limits_for(settings),
                                      expires_at=deadline)
    try:
        result: CompressResult = job.result()
    except FeatherError as exc:
        metrics().jobs.labels(job_outcome(exc.code, exc.message)).inc()
        raise
    metrics().jobs.labels("ok").inc()
    count_delivered(result.format.name, result.original_bytes, result.output_bytes)
    return result


def compress_all(sources: Sequence[JobInput], options: CompressOptions, deadline: float,
                 settings: Settings) -> list[CompressResult | FeatherError]:
    """Compress every source on the job processes, all done or killed by ``deadline``.

    ``deadline`` is a ``time.monotonic()`` instant. Each entry is the result or the error
    that image ended with; images not done in time end as ``ProcessingTimeout``.
    """
    runner = runner_for(settings)
    limits = limits_for(settings)
    jobs = [runner.submit(source, options, limits, expires_at=deadline) for source in sources]
    results: list[CompressResult | FeatherError] = wait_all(jobs, deadline)
    for result in results:
        if isinstance(result, FeatherError):
            metrics().jobs.labels(job_outcome(result.code, result.message)).inc()
        else:
            metrics().jobs.labels("ok").inc()
    return results


def seconds_left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
