"""GET /api/ready: can this host serve every request now? (readiness, not liveness)

``/api/health`` answers as long as the process runs (the contract's liveness probe).
Readiness checks what requests depend on, each with its state and how long it took:

- ``database``: one round trip to the accounts database (required);
- ``store``: a small write to DATA_DIR/outputs, or a listing of the bucket's prefix,
  and the download-link signing key (required);
- ``redis``: a PING, when ``REDIS_URL`` is set (not required: the rate limiter fails
  open without it, so the host still serves).

200 when every required part is up, else 503 with the same report plus the error
envelope. The checks run side by side and the answer comes within ``_CHECK_SECONDS``
(a check still running then counts as down). Causes go to the log; the report names
only the kind of failure, since the endpoint may be reachable from outside.

``python -m feather_server.api.ready --wait 60`` polls the local service until it is
ready (the systemd unit's ExecStartPost) and prints the report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

from feather_server.errors import RETRY_AFTER_SECONDS
from feather_server.settings import Settings, current_settings

bp = Blueprint("ready", __name__, url_prefix="/api")
log = logging.getLogger("feather.ready")

_CHECK_SECONDS = 3.0
_REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Check:
    """One part: whether it answered, how fast, and whether the host needs it."""

    name: str
    required: bool
    kind: str
    up: bool = False
    latency_ms: float | None = None
    failure: str | None = None

    def report(self) -> dict[str, Any]:
        body: dict[str, Any] = {"state": "up" if self.up else "down", "kind": self.kind,
                                "required": self.required, "latencyMs": self.latency_ms}
        if self.failure:
            body["error"] = self.failure
        return body


def _database(settings: Settings) -> str:
    from feather_server.accounts.database import database_for

    db = database_for(settings)
    db.ping()
    return db.dialect


def _store(settings: Settings) -> str:
    from feather_server.storage import current_signer, current_store

    store = current_store()
    store.check()
    current_signer()  # the key every download link is signed with
    return store.describe()


def _redis(settings: Settings) -> str:
    import redis

    client = redis.Redis.from_url(settings.redis_url,
                                  socket_timeout=_REDIS_TIMEOUT_SECONDS,
                                  socket_connect_timeout=_REDIS_TIMEOUT_SECONDS)
    try:
        client.ping()
    finally:
        client.close()
    return "redis"


Part = tuple[str, bool, str, Callable[[Settings], str]]


def _parts(settings: Settings) -> list[Part]:
    db_kind = "sqlite" if not settings.database_url else "postgresql"
    parts: list[Part] = [("database", True, db_kind, _database),
             ("store", True, "s3" if settings.s3_bucket else "local", _store)]
    if settings.redis_url:
        parts.append(("redis", False, "redis", _redis))
    return parts


def _run(app: Flask, name: str, required: bool, kind: str,
         probe: Callable[[Settings], str]) -> Check:
    started = time.perf_counter()
    try:
        with app.app_context():
            kind = probe(current_settings())
    except Exception as exc:
        log.warning("readiness: %s is down: %s", name, exc, exc_info=exc)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return Check(name, required, kind, up=False, latency_ms=elapsed,
                     failure=type(exc).__name__)
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return Check(name, required, kind, up=True, latency_ms=elapsed)


def run_checks(app: Flask, settings: Settings) -> list[Check]:
    """Every part's check, side by side, within _CHECK_SECONDS."""
    parts = _parts(settings)
    pool = ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="ready")
    futures = [pool.submit(_run, app, *part) for part in parts]
    deadline = time.monotonic() + _CHECK_SECONDS
    checks = []
    for (name, required, kind, _), future in zip(parts, futures, strict=True):
        try:
            checks.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            checks.append(Check(name, required, kind, up=False,
                                latency_ms=_CHECK_SECONDS * 1000, failure="timeout"))
    # A check that overran finishes in the background (each is bounded by its own
    # timeouts); the answer does not wait for it.
    pool.shutdown(wait=False)
    return checks


@bp.get("/ready")
def ready() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    checks = run_checks(app, current_settings())
    down = [c.name for c in checks if c.required and not c.up]
    body: dict[str, Any] = {"ready": not down,
                            "checks": {c.name: c.report() for c in checks}}
    if not down:
        response = jsonify(body)
    else:
        body["error"] = {"code": "SERVICE_UNAVAILABLE",
                         "message": f"Not ready: {', '.join(down)} down"}
        response = jsonify(body)
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def wait_until_ready(url: str, wait: float) -> tuple[bool, str]:
    """Poll ``url`` until it answers 200 or ``wait`` seconds pass; (ready, last report)."""
    deadline = time.monotonic() + wait
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=_CHECK_SECONDS + 2) as answer:
                return True, answer.read().decode()
        except urllib.error.HTTPError as exc:
            last = exc.read().decode(errors="replace")
        except OSError as exc:
            last = f"no answer: {exc}"
        if time.monotonic() >= deadline:
            return False, last
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m feather_server.api.ready",
        description="Wait until the local Feather service is ready (GET /api/ready).")
    host = os.environ.get("HOST", "127.0.0.1")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    port = os.environ.get("PORT", "3000")
    parser.add_argument("--url", default=f"http://{host}:{port}/api/ready")
    parser.add_argument("--wait", type=float, default=60.0,
                        help="seconds to keep trying (default 60)")
    args = parser.parse_args(argv)
    ok, report = wait_until_ready(args.url, args.wait)
    with contextlib.suppress(ValueError):  # one line in the journal
        report = json.dumps(json.loads(report), separators=(",", ":"))
    print(f"feather {'ready' if ok else 'NOT ready'}: {report}",
          file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
