"""Request ids, request timing and Prometheus metrics.

- Every request gets an id: the client's ``X-Request-Id`` when it is a plain token,
  else a generated one. It is sent back in ``X-Request-Id``, is in gunicorn's access
  log line (``gunicorn.conf.py`` logs the response header) and in every log record
  written while the request runs (``request_id`` on each ``LogRecord``).
- ``GET /metrics`` (only with ``METRICS_ENABLED``): requests by endpoint, method and
  status, a processing-time histogram, bytes in and out, and what the services count
  (``feather_server.metrics``: refusals by code, jobs killed for time or memory, images
  and bytes by format, AI calls, dependency failures...). Under gunicorn each worker
  writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (set and emptied by
  ``gunicorn.conf.py``) and a scrape, whichever worker answers it, sums every worker's
  files: prometheus-client's multiprocess mode. Without that directory (one process,
  e.g. the Flask test client) the samples stay in memory.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request

from feather_server.metrics import Metrics, metrics
from feather_server.settings import Settings

REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is kept only when it cannot break a log line or a header.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")



def init_app(app: Flask) -> None:
    """Give every request an id and, with METRICS_ENABLED, count it and serve /metrics."""
    settings: Settings = app.config["FEATHER"]
    _install_record_factory()
    app.before_request(_start)
    app.after_request(_finish)
    if settings.metrics_enabled:
        app.extensions["feather_metrics"] = metrics()
        app.add_url_rule("/metrics", "observability.metrics", _serve_metrics, methods=["GET"])


def request_deadline(seconds: float) -> float:
    """The ``time.monotonic()`` instant ``seconds`` after this request arrived."""
    arrived: float = g.get("request_arrived", time.monotonic())
    return arrived + seconds


def current_request_id() -> str:
    """The id of the request being served, or "-" outside a request."""
    if has_request_context():
        return str(g.get("request_id") or "-")
    return "-"


def _start() -> None:
    g.request_started = time.perf_counter()
    g.request_arrived = time.monotonic()
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _CLIENT_ID.fullmatch(offered) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    if "request_id" not in g:  # a request that failed before any before_request ran
        _start()
    response.headers[REQUEST_ID_HEADER] = g.request_id
    counters: Metrics | None = current_app.extensions.get("feather_metrics")
    if counters is not None and request.endpoint != "observability.metrics":
        endpoint = request.endpoint or "unmatched"  # unknown paths share one label
        elapsed = time.perf_counter() - g.request_started
        counters.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        counters.duration.labels(endpoint).observe(elapsed)
        counters.bytes_in.labels(endpoint).inc(request.content_length or 0)
        sent = response.content_length
        if sent is None and not response.is_streamed:
            sent = response.calculate_content_length()
        counters.bytes_out.labels(endpoint).inc(sent or 0)
    return response


# Logging: every record carries request_id, so any format may print it.

_factory_installed = False


def _install_record_factory() -> None:
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def _multiprocess_dir() -> str | None:
    # prometheus-client's own switch, read by the library when it is imported; the
    # app only follows it.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _serve_metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    path = _multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry = metrics().registry
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
