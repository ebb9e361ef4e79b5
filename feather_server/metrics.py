"""What the service counts, for ``GET /metrics``: what goes wrong as well as what goes right.

Counters live in one registry per process. Under gunicorn with ``METRICS_ENABLED``,
prometheus-client's multiprocess mode writes each process's samples to
``PROMETHEUS_MULTIPROC_DIR`` and a scrape sums every worker's (and the master's, for
worker exits). No Flask here: services count as they work.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import CollectorRegistry, Counter, Histogram

# Image work takes from milliseconds (a small PNG) to tens of seconds (AVIF, targetMB).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0)


class Metrics:
    """Every counter of one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("feather_http_requests", "HTTP requests answered.",
                                ["endpoint", "method", "status"], registry=r)
        self.duration = Histogram("feather_request_duration_seconds",
                                  "Time from the first to the last hook of a request.",
                                  ["endpoint"], buckets=DURATION_BUCKETS, registry=r)
        self.bytes_in = Counter("feather_request_bytes", "Request body bytes received.",
                                ["endpoint"], registry=r)
        self.bytes_out = Counter("feather_response_bytes", "Response body bytes sent.",
                                 ["endpoint"], registry=r)
        self.refusals = Counter("feather_refusals", "Error answers, by error code.",
                                ["code"], registry=r)
        self.jobs = Counter("feather_jobs", "Image jobs by how they ended: ok, failed (a "
                            "documented error), timeout (killed at the deadline), memory "
                            "(over the job's ceiling), crashed (the job process died).",
                            ["outcome"], registry=r)
        self.images = Counter("feather_images", "Images delivered, by output format.",
                              ["format"], registry=r)
        self.image_bytes_in = Counter("feather_image_input_bytes",
                                      "Bytes of the images delivered, as received.",
                                      ["format"], registry=r)
        self.image_bytes_out = Counter("feather_image_output_bytes",
                                       "Bytes of the images delivered, as sent.",
                                       ["format"], registry=r)
        self.image_bytes_saved = Counter("feather_image_saved_bytes",
                                         "Bytes saved (input minus output, when smaller).",
                                         ["format"], registry=r)
        self.ai_calls = Counter("feather_ai_calls", "AI descriptions by outcome: ok, "
                                "or failed (an error, or no answer by the deadline).",
                                ["outcome"], registry=r)
        self.dependency_errors = Counter("feather_dependency_errors",
                                         "Failures of a part Feather depends on.",
                                         ["part"], registry=r)
        self.ratelimit_store_failures = Counter(
            "feather_ratelimit_store_failures",
            "Requests let through because the rate-limit store failed.", registry=r)
        self.worker_exits = Counter("feather_worker_exits",
                                    "gunicorn workers that exited (recycled, killed, died).",
                                    registry=r)
        self.worker_timeouts = Counter("feather_worker_timeouts",
                                       "gunicorn workers killed for silence (its timeout).",
                                       registry=r)


@cache
def metrics() -> Metrics:
    """This process's counters (created on first use)."""
    return Metrics()


def job_outcome(code: str | None, message: str = "") -> str:
    """The ``feather_jobs`` outcome of a job that ended with error ``code`` (None: ok)."""
    if code is None:
        return "ok"
    if code == "TIMEOUT":
        return "timeout"
    if code == "TOO_MANY_PIXELS" and "memory" in message:
        return "memory"
    if code == "PROCESSING_FAILED" and "died" in message:
        return "crashed"
    return "failed"


def count_delivered(output_format: str, original: int, output: int) -> None:
    m = metrics()
    m.images.labels(output_format).inc()
    m.image_bytes_in.labels(output_format).inc(original)
    m.image_bytes_out.labels(output_format).inc(output)
    m.image_bytes_saved.labels(output_format).inc(max(0, original - output))
