"""Settings: read from the environment once, at start-up, into one frozen object.

Every setting has a type, a default and a description here, and nowhere else; the
README's configuration table is generated from ``SETTINGS_TABLE``. A bad value stops
start-up with one error that names every bad variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from feather_server.services.model_pins import MODNET_FULL, MODNET_QUANTIZED


class SettingsError(Exception):
    """One or more environment variables are invalid; the message lists them all."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(raw: str) -> bool:
    """true/false, 1/0, on/off, yes/no in any case; ValueError otherwise.

    Environment variables and form fields both use it.
    """
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true/false/1/0/on/off")


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if value < low:
            raise ValueError(f"must be >= {low}")
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw.strip())
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return value

    return parse


def _text(raw: str) -> str:
    return raw.strip()


def _model_url(raw: str) -> str:
    # An empty variable means the default, so "none" is how an operator turns it off.
    value = raw.strip()
    if value.lower() == "none":
        return ""
    if not value.lower().startswith(("http://", "https://")):
        raise ValueError("expected an http(s) URL or none")
    return value


def _sha256(raw: str) -> str:
    value = raw.strip().lower()
    if value == "none":
        return ""
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("expected 64 hexadecimal digits or none")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


def _key_prefix(raw: str) -> str:
    # "feather/outputs" and "/feather/outputs/" both mean the folder feather/outputs/.
    prefix = raw.strip().strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ValueError("must be a folder path such as feather/outputs/")
    return f"{prefix}/" if prefix else ""


def _env(name: str, parse: Callable[[str], Any], default: Any, group: str, doc: str) -> Any:
    return field(default=default, metadata={"env": name, "parse": parse, "group": group,
                                            "doc": doc})


@dataclass(frozen=True)
class Settings:
    """The service's configuration; build it with ``Settings.from_env()``."""

    env: str = _env("FEATHER_ENV", _text, "production", "service",
                    "Name reported by /api/health (production, staging, development).")
    port: int = _env("PORT", _int_at_least(1), 3000, "service", "Port `make run` listens on.")
    max_upload_mb: float = _env("MAX_UPLOAD_MB", _positive_float, 20.0, "limits",
                                "Largest upload per file, in MB of 1,000,000 bytes (413 above).")
    max_pixels: int = _env("MAX_PIXELS", _int_at_least(1), 50_000_000, "limits",
                           "Largest decoded size, width × height × frames (422 above).")
    max_frames: int = _env("MAX_FRAMES", _int_at_least(1), 1000, "limits",
                           "Most frames an animation may have (422 above).")
    request_timeout_ms: int = _env("REQUEST_TIMEOUT_MS", _int_at_least(1), 30_000, "limits",
                                   "Processing time allowed per request (504 above).")
    job_processes: int = _env("JOB_PROCESSES", _int_at_least(0), 0, "limits",
                              "Job processes per gunicorn worker that decode, edit and "
                              "encode images; 0: one per CPU.")
    max_job_memory_mb: int = _env("MAX_JOB_MEMORY_MB", _int_at_least(0), 0, "limits",
                                  "Memory one image job may use, in MiB, enforced by the "
                                  "operating system; 0: 256 MiB plus 24 bytes per pixel of "
                                  "MAX_PIXELS.")
    body_timeout_ms: int = _env("BODY_TIMEOUT_MS", _int_at_least(1), 10_000, "limits",
                                "Longest wait for the next bytes of a request body "
                                "(408 above).")
    rate_limit_per_minute: int = _env("RATE_LIMIT_PER_MINUTE", _int_at_least(0), 60, "limits",
                                      "Requests per client IP per minute on working "
                                      "endpoints; 0 disables.")
    rate_limit_previews_per_minute: int = _env(
        "RATE_LIMIT_PREVIEWS_PER_MINUTE", _int_at_least(0), 120, "limits",
        "Previews (mode=preview, one file) per client IP per minute, a budget of their own "
        "beside RATE_LIMIT_PER_MINUTE, so the form's live previews never use up the budget "
        "of real work; 0: previews spend RATE_LIMIT_PER_MINUTE like any request.")
    cors_origins: tuple[str, ...] = _env("CORS_ORIGINS", _origins, (), "http",
                                         "Comma-separated allowed origins, or *.")
    trusted_proxies: int = _env("TRUSTED_PROXIES", _int_at_least(0), 0, "http",
                                "Number of reverse proxies in front whose X-Forwarded-For "
                                "is trusted.")
    redis_url: str = _env("REDIS_URL", _text, "", "scale",
                          "Redis for rate-limit counters shared by several hosts.")
    rate_limit_key_prefix: str = _env("RATE_LIMIT_KEY_PREFIX", _text, "feather", "scale",
                                      "Prefix of the rate-limit keys, so several deployments "
                                      "can share one Redis.")
    database_url: str = _env("DATABASE_URL", _text, "", "scale",
                             "SQLAlchemy URL of the accounts database (default: SQLite "
                             "in DATA_DIR).")
    database_timeout_ms: int = _env("DATABASE_TIMEOUT_MS", _int_at_least(1), 1500, "scale",
                                    "Time the accounts database has to connect and answer "
                                    "a request's transaction (503 above).")
    data_dir: str = _env("DATA_DIR", _text, "var", "storage",
                         "Folder for the SQLite database, stored outputs and counters.")
    require_api_key: bool = _env("REQUIRE_API_KEY", parse_bool, False, "accounts",
                                 "Hosted mode: every working endpoint needs a key.")
    download_ttl_seconds: int = _env("DOWNLOAD_TTL_SECONDS", _int_at_least(1), 3600,
                                     "storage", "Lifetime of stored outputs and their "
                                     "download URLs.")
    secret_key: str = _env("SECRET_KEY", _text, "", "storage",
                           "Key that signs download URLs (default: generated once and "
                           "kept in DATA_DIR).")
    public_url: str = _env("PUBLIC_URL", _text, "", "storage",
                           "Absolute base URL for download links (default: from the "
                           "request).")
    s3_bucket: str = _env("S3_BUCKET", _text, "", "storage",
                          "Store outputs in this S3-compatible bucket instead of DATA_DIR.")
    s3_endpoint_url: str = _env("S3_ENDPOINT_URL", _text, "", "storage",
                                "Endpoint of a non-AWS S3-compatible server.")
    s3_region: str = _env("S3_REGION", _text, "us-east-1", "storage", "Region of the bucket.")
    s3_access_key_id: str = _env("S3_ACCESS_KEY_ID", _text, "", "storage", "S3 access key.")
    s3_secret_access_key: str = _env("S3_SECRET_ACCESS_KEY", _text, "", "storage",
                                     "S3 secret key.")
    s3_prefix: str = _env("S3_PREFIX", _key_prefix, "feather/outputs/", "storage",
                          "Folder of the bucket that holds Feather's outputs; nothing outside "
                          "it is ever listed or deleted (`/`: the bucket root).")
    s3_lifecycle: bool = _env("S3_LIFECYCLE", parse_bool, False, "storage",
                              "Let the bucket expire outputs: install (or find) a lifecycle "
                              "rule on S3_PREFIX and stop sweeping.")
    s3_public_url: str = _env("S3_PUBLIC_URL", _text, "", "storage",
                              "Base URL clients reach the S3 endpoint at (a CDN or public "
                              "host name passing the Host header on); links are signed for it.")
    s3_timeout_ms: int = _env("S3_TIMEOUT_MS", _int_at_least(1), 5000, "storage",
                              "Connect and read timeout of one S3 call (capped so that every "
                              "attempt fits in half of REQUEST_TIMEOUT_MS).")
    s3_max_attempts: int = _env("S3_MAX_ATTEMPTS", _int_at_least(1), 2, "storage",
                                "Attempts per S3 call (the first plus retries) before 503.")
    model_cache_dir: str = _env("MODEL_CACHE_DIR", _text, "", "model",
                                "Folder the background-removal model is cached in "
                                "(default: DATA_DIR/models).")
    model_full_url: str = _env("MODEL_FULL_URL", _model_url, MODNET_FULL.url, "model",
                               "Upstream URL of the full MODNet ONNX model (pinned "
                               "revision); none: no upstream.")
    model_full_sha256: str = _env("MODEL_FULL_SHA256", _sha256, MODNET_FULL.sha256, "model",
                                  "sha256 the full model must have, checked before it is "
                                  "cached and when read back; none: unchecked.")
    model_quantized_url: str = _env("MODEL_QUANTIZED_URL", _model_url, MODNET_QUANTIZED.url,
                                    "model", "Upstream URL of the quantized MODNet ONNX "
                                    "model (pinned revision); none: no upstream.")
    model_quantized_sha256: str = _env("MODEL_QUANTIZED_SHA256", _sha256,
                                       MODNET_QUANTIZED.sha256, "model",
                                       "sha256 the quantized model must have; none: "
                                       "unchecked.")
    model_fetch_timeout_ms: int = _env("MODEL_FETCH_TIMEOUT_MS", _int_at_least(1), 60_000,
                                       "model", "Upstream fetch timeout (502 above).")
    model_max_mb: float = _env("MODEL_MAX_MB", _positive_float, 200.0, "model",
                               "Largest model accepted from the upstream.")
    huggingface_token: str = _env("HUGGINGFACE_TOKEN", _text, "", "model",
                                  "Sent as a Bearer token to the model upstream.")
    ai_base_url: str = _env("AI_BASE_URL", _text, "", "ai",
                            "OpenAI-compatible API base URL (…/v1) for alt text and names.")
    ai_api_key: str = _env("AI_API_KEY", _text, "", "ai", "Bearer key for AI_BASE_URL.")
    ai_model: str = _env("AI_MODEL", _text, "", "ai", "Vision model name at AI_BASE_URL.")
    ai_timeout_ms: int = _env("AI_TIMEOUT_MS", _int_at_least(1), 20_000, "ai",
                              "Timeout of one AI call.")
    metrics_enabled: bool = _env("METRICS_ENABLED", parse_bool, False, "service",
                                 "Serve Prometheus metrics at /metrics.")
    log_level: str = _env("LOG_LEVEL", _text, "INFO", "service", "Python log level.")
    log_format: str = _env("LOG_FORMAT", _choice("text", "json"), "text", "service",
                           "text, or json: one JSON object per line (app, gunicorn error and "
                           "access logs), each with its request id.")
    extra: Mapping[str, Any] = field(default_factory=dict, metadata={"internal": True})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``).

        Raises ``SettingsError`` naming every invalid variable at once.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        errors: list[str] = []
        for f in fields(cls):
            meta = f.metadata
            if meta.get("internal"):
                continue
            raw = environ.get(meta["env"])
            if raw is None or raw.strip() == "":
                continue
            try:
                values[f.name] = meta["parse"](raw)
            except ValueError as exc:
                errors.append(f"{meta['env']}={raw!r}: {exc}")
        if errors:
            raise SettingsError("Invalid environment: " + "; ".join(errors))
        values.update(overrides)
        return cls(**values)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def job_process_count(self) -> int:
        return self.job_processes or os.cpu_count() or 1

    @property
    def request_timeout(self) -> float:
        return self.request_timeout_ms / 1000


def current_settings() -> Settings:
    """The settings of the app serving the current request or CLI command."""
    from flask import current_app

    settings: Settings = current_app.config["FEATHER"]
    return settings


def settings_table() -> list[tuple[str, str, str, str]]:
    """(variable, default, group, description) rows for documentation."""
    rows = []
    for f in fields(Settings):
        meta = f.metadata
        if meta.get("internal"):
            continue
        default = f.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        rows.append((meta["env"], shown, meta["group"], meta["doc"]))
    return rows
