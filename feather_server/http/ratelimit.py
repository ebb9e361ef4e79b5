"""Per-client-IP rate limits on the endpoints that do work (Flask-Limiter).

One budget of ``RATE_LIMIT_PER_MINUTE`` requests per client IP is shared by every
working endpoint (a client cannot multiply it by spreading over endpoints), counted
in a moving window of 60 seconds, so no 60-second span ever holds more than the limit.
Previews (``mode=preview``, one file: what the upload form sends as options change)
spend a budget of their own, ``RATE_LIMIT_PREVIEWS_PER_MINUTE``, in the same window and
the same store (``feather_server.http.policy.budget_of`` tells which a request spends),
so live previews never use up the budget of downloads, and a client can never have more
than the two budgets together.

Counters live where every process that serves the client can see them:
- ``REDIS_URL`` set: in Redis, so several hosts share one budget;
- otherwise: in ``DATA_DIR/ratelimit.sqlite3`` (``SQLiteStorage`` below), so the
  gunicorn workers of one host share one budget.

A storage that fails (Redis stopped, disk full) lets requests through with one logged
warning per process every ``_WARN_EVERY`` seconds: the limiter protects the service, it
must never be the reason the service is down. No X-RateLimit headers are sent while it
is failing, since nothing trustworthy is known.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import RateLimitItemPerMinute
from limits.storage import MovingWindowSupport, Storage
from werkzeug.middleware.proxy_fix import ProxyFix

from feather_server.datadir import create_private_file, private_folder
from feather_server.http.errors import error_response
from feather_server.http.policy import PREVIEWS, budget_of
from feather_server.metrics import metrics
from feather_server.settings import Settings, current_settings

log = logging.getLogger("feather.ratelimit")

_WINDOW_S = 60
_WARN_EVERY = 30.0
_REDIS_TIMEOUT_S = 0.5


def init_app(app: Flask) -> None:
    """Trust ``TRUSTED_PROXIES`` proxies for the client IP, and limit working endpoints."""
    settings: Settings = app.config["FEATHER"]
    if settings.trusted_proxies:
        # Each trusted proxy appends one X-Forwarded-For entry; ProxyFix takes the one
        # the outermost trusted proxy saw, so values a client writes itself are ignored.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
    if settings.rate_limit_per_minute == 0:
        return
    limiter = Limiter(
        key_func=get_remote_address,
        application_limits=[f"{settings.rate_limit_per_minute} per minute"],
        application_limits_exempt_when=_exempt,
        strategy="moving-window",
        storage_uri=storage_uri(settings),
        storage_options=_storage_options(settings),
        key_prefix=settings.rate_limit_key_prefix,
        headers_enabled=True,
        swallow_errors=True,
    )
    # Registered before the limiter's own hook, so it runs after it (Flask runs
    # after_request functions in reverse order) and sees the headers it wrote.
    app.after_request(_retry_after_only_when_limited)
    app.after_request(_preview_headers)
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    limiter_log = logging.getLogger("flask-limiter")
    if _STORAGE_FAILURE_FILTER not in limiter_log.filters:
        limiter_log.addFilter(_STORAGE_FAILURE_FILTER)
    # Before the limiter's own check: a preview spends its own budget and is exempt there.
    app.before_request(_spend_preview_budget)
    limiter.init_app(app)
    app.extensions["feather_limiter"] = limiter


def storage_uri(settings: Settings) -> str:
    """Where the counters live: Redis when configured, else SQLite in DATA_DIR."""
    if settings.redis_url:
        return settings.redis_url
    path = os.path.abspath(os.path.join(settings.data_dir, "ratelimit.sqlite3"))
    return f"{SQLiteStorage.STORAGE_SCHEME[0]}://{path}"


def _storage_options(settings: Settings) -> dict[str, Any]:
    if not settings.redis_url:
        return {}
    # A Redis that hangs must cost a request half a second, not the worker's life;
    # with no retries a stopped Redis costs one refused connection per request.
    return {"socket_timeout": _REDIS_TIMEOUT_S, "socket_connect_timeout": _REDIS_TIMEOUT_S,
            "retry": None}


def _budget() -> str | None:
    """The budget this request spends (decided once per request)."""
    if "feather_budget" not in g:
        view = current_app.view_functions.get(request.endpoint or "")
        g.feather_budget = budget_of(view, current_settings())
    found: str | None = g.feather_budget
    return found


def _exempt() -> bool:
    # Only views marked @rate_limited do work worth limiting (health, formats, signed
    # downloads and one's own usage are not); preflights carry no work and must be
    # answered even to a client over its limit. Previews spend their own budget.
    return _budget() in (None, PREVIEWS)


def _spend_preview_budget() -> Response | None:
    """Take one of the client's previews, or answer 429 when none is left."""
    if _budget() != PREVIEWS:
        return None
    settings = current_settings()
    limiter: Limiter = current_app.extensions["feather_limiter"]
    item = RateLimitItemPerMinute(settings.rate_limit_previews_per_minute)
    identity = (settings.rate_limit_key_prefix, PREVIEWS, get_remote_address())
    try:
        granted = limiter.limiter.hit(item, *identity)
        stats = limiter.limiter.get_window_stats(item, *identity)
    except Exception as exc:  # noqa: BLE001 - the store failed: fail open, as the limiter
        _warn_storage_failure(exc)
        return None
    g.feather_preview_window = (item.amount, stats.remaining, math.ceil(stats.reset_time))
    if granted:
        return None
    return error_response(
        429, "RATE_LIMIT_EXCEEDED",
        f"Preview limit exceeded: {item.amount} previews per minute per client. "
        "Retry after the number of seconds in Retry-After.",
    )


def _preview_headers(response: Response) -> Response:
    window = g.get("feather_preview_window")
    if window is not None:
        limit, remaining, reset = window
        response.headers["X-RateLimit-Limit"] = str(limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = str(reset)
    return response


def _too_many_requests(exc: RateLimitExceeded) -> Response:
    per_minute = current_settings().rate_limit_per_minute
    return error_response(
        429, "RATE_LIMIT_EXCEEDED",
        f"Rate limit exceeded: {per_minute} requests per minute per client. "
        "Retry after the number of seconds in Retry-After.",
    )


def _retry_after_only_when_limited(response: Response) -> Response:
    # Flask-Limiter writes Retry-After on every limited response; it only means
    # something on a 429 (where it must be at least one second) or a view's own 503.
    if response.status_code != 429:
        if "X-RateLimit-Reset" in response.headers and response.status_code != 503:
            response.headers.pop("Retry-After", None)
        return response
    reset = response.headers.get("X-RateLimit-Reset")
    if reset is not None:
        # Reset is rounded up to the next second; no wait is longer than the window.
        wait = math.ceil(int(reset) - time.time())
        response.headers["Retry-After"] = str(min(_WINDOW_S, max(1, wait)))
    elif "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(_WINDOW_S)
    return response


class _StorageFailureFilter(logging.Filter):
    """Turn Flask-Limiter's per-request tracebacks for a failing storage into one warning
    per process every ``_WARN_EVERY`` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if "Swallowing error" not in record.getMessage():
            return True
        self.failed(record.exc_info[1] if record.exc_info else None)
        return False

    def failed(self, cause: BaseException | None) -> None:
        metrics().ratelimit_store_failures.inc()
        now = time.monotonic()
        if now - self._last < _WARN_EVERY:
            return
        self._last = now
        log.warning("Rate-limit storage unavailable, letting requests through: %s",
                    f"{type(cause).__name__}: {cause}" if cause else "unknown error")


_STORAGE_FAILURE_FILTER = _StorageFailureFilter()


def _warn_storage_failure(cause: BaseException) -> None:
    _STORAGE_FAILURE_FILTER.failed(cause)


_OPEN_TRIES = 5
_OPEN_PAUSE = 0.05


def _connect(path: str) -> sqlite3.Connection:
    """A connection to the counters' file, in WAL mode, with its tables made."""
    conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY,"
                     " count INTEGER NOT NULL, expires_at REAL NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT NOT NULL,"
                     " at REAL NOT NULL, expires_at REAL NOT NULL)")
        conn.execute("CREATE INDEX IF NOT EXISTS entries_key_at ON entries (key, at)")
        conn.execute("CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires_at)")
        conn.execute("COMMIT")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


class SQLiteStorage(Storage, MovingWindowSupport):
    """A ``limits`` storage in one SQLite file, shared by the processes of one host.

    Every change runs in a ``BEGIN IMMEDIATE`` transaction, which SQLite serialises
    across processes with its file locks, so concurrent workers never both take the
    last slot. WAL mode lets readers proceed while one writer commits, and
    ``synchronous=NORMAL`` skips the fsync per commit: counters may be lost in a
    power cut, never corrupted.
    """

    STORAGE_SCHEME = ["feather-sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        assert uri is not None
        self.path = uri.split("://", 1)[1]
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        # A connection must not cross a fork: each process opens its own.
        if self._conn is None or self._pid != os.getpid():
            # Owner-only (the counters are keyed by client IP); SQLite keeps the mode.
            folder = private_folder(Path(self.path).parent)
            create_private_file(folder / Path(self.path).name)
            self._conn, self._pid = self._open(), os.getpid()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        # The workers of a new service open the file at once. Turning it to WAL takes an
        # exclusive lock, and SQLite may answer "locked" at once instead of waiting, which
        # would let requests through unlimited (swallow_errors): the set-up is retried.
        for attempt in range(1, _OPEN_TRIES):
            try:
                return _connect(self.path)
            except sqlite3.OperationalError:
                time.sleep(_OPEN_PAUSE * attempt)
        return _connect(self.path)

    # Fixed-window counters (the Storage interface).

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM counters WHERE key = ? AND expires_at <= ?", (key, now))
                db.execute("INSERT INTO counters (key, count, expires_at) VALUES (?, ?, ?) "
                           "ON CONFLICT (key) DO UPDATE SET count = count + excluded.count",
                           (key, amount, now + expiry))
                row = db.execute("SELECT count FROM counters WHERE key = ?", (key,)).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return int(row[0])

    def get(self, key: str) -> int:
        with self._lock:
            row = self._db().execute("SELECT count FROM counters WHERE key = ? AND "
                                     "expires_at > ?", (key, time.time())).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        with self._lock:
            row = self._db().execute("SELECT expires_at FROM counters WHERE key = ?",
                                     (key,)).fetchone()
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        try:
            with self._lock:
                self._db().execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        with self._lock:
            db = self._db()
            count = db.execute("SELECT (SELECT COUNT(*) FROM counters) + "
                               "(SELECT COUNT(DISTINCT key) FROM entries)").fetchone()[0]
            db.execute("DELETE FROM counters")
            db.execute("DELETE FROM entries")
        return int(count)

    def clear(self, key: str) -> None:
        with self._lock:
            db = self._db()
            db.execute("DELETE FROM counters WHERE key = ?", (key,))
            db.execute("DELETE FROM entries WHERE key = ?", (key,))

    # Moving window (what Feather uses).

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                # Expired entries of every key go here, so the table stays small.
                db.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))
                taken = db.execute("SELECT COUNT(*) FROM entries WHERE key = ? AND at > ?",
                                   (key, now - expiry)).fetchone()[0]
                granted = taken + amount <= limit
                if granted:
                    db.executemany("INSERT INTO entries (key, at, expires_at) VALUES (?, ?, ?)",
                                   [(key, now, now + expiry)] * amount)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return bool(granted)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with self._lock:
            oldest, count = self._db().execute(
                "SELECT MIN(at), COUNT(*) FROM entries WHERE key = ? AND at > ?",
                (key, now - expiry)).fetchone()
        return (float(oldest), int(count)) if count else (now, 0)
