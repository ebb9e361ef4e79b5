"""The background-removal model (MODNet, ONNX): memory, then disk, then the upstream.

Tiers, in order:
1. memory: the model bytes of each variant, held once per worker process;
2. disk: ``MODEL_CACHE_DIR/modnet-<variant>.onnx`` (default ``DATA_DIR/models``),
   shared by every worker of the host and kept across restarts;
3. the upstream (``MODEL_FULL_URL`` / ``MODEL_QUANTIZED_URL``), fetched once per host.

A fetch streams the body to a temporary file beside the model and renames it into
place only when it is complete, so the disk never holds a half-written model, even
if the worker dies midway. A file lock per variant makes concurrent cold requests
from several workers wait for one fetch instead of each fetching.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from filelock import FileLock
from filelock import Timeout as LockTimeout

from feather_server.errors import ApiError
from feather_server.settings import Settings

log = logging.getLogger("feather.model")

VARIANTS = ("full", "quantized")
MAX_REDIRECTS = 5
_CHUNK = 1 << 16
_ALLOWED_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Model:
    """One variant's bytes and their strong validator."""

    variant: str
    data: bytes
    etag: str  # unquoted; the sha256 of the bytes, so every worker and host agree


class FetchFailed(Exception):
    """The upstream could not deliver a complete model; the message says why."""


class ModelCache:
    """Serves each variant from memory, disk or the upstream, in that order."""

    def __init__(self, settings: Settings) -> None:
        self.directory = Path(settings.model_cache_dir or Path(settings.data_dir) / "models")
        self.urls = {"full": settings.model_full_url, "quantized": settings.model_quantized_url}
        self.timeout = settings.model_fetch_timeout_ms / 1000
        self.max_bytes = int(settings.model_max_mb * 1_000_000)
        self.token = settings.huggingface_token
        self._memory: dict[str, Model] = {}
        # Threads of one worker (threaded servers) queue here and then hit memory,
        # so the worker never holds two copies of a variant.
        self._loading = threading.Lock()

    def path(self, variant: str) -> Path:
        return self.directory / f"modnet-{variant}.onnx"

    def get(self, variant: str) -> Model:
        """The model of ``variant``; raises ApiError when it cannot be had."""
        model = self._memory.get(variant)
        if model is not None:
            return model
        with self._loading:
            model = self._memory.get(variant)
            if model is None:
                model = self._load(variant)
                self._memory[variant] = model
            return model

    def _load(self, variant: str) -> Model:
        path = self.path(variant)
        if path.is_file():
            try:
                return _read(variant, path)
            except OSError as exc:
                raise self._unusable(variant, exc) from None
        url = self.urls[variant]
        if not url:
            env = "MODEL_FULL_URL" if variant == "full" else "MODEL_QUANTIZED_URL"
            raise ApiError(
                "SERVICE_UNAVAILABLE",
                f"The {variant} model is not configured: set {env}, or place "
                f"{path.name} in MODEL_CACHE_DIR",
                {"variant": variant},
            )
        # One deadline for waiting on another worker's fetch and for fetching, so no
        # request outlives MODEL_FETCH_TIMEOUT_MS (and gunicorn's worker timeout).
        started = time.monotonic()
        deadline = started + self.timeout
        lock = FileLock(self.directory / f".modnet-{variant}.lock")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
                if path.is_file():  # another worker fetched it while this one waited
                    return _read(variant, path)
                self._remove_partial_files(variant)
                size = self._fetch(variant, url, path, deadline)
                log.info("fetched the %s model (%d bytes) in %.1f s", variant, size,
                         time.monotonic() - started)
                return _read(variant, path)
        except LockTimeout:
            raise _fetch_failed(variant, "another worker was still fetching it when "
                                "MODEL_FETCH_TIMEOUT_MS passed") from None
        except FetchFailed as exc:
            log.warning("fetching the %s model failed: %s", variant, exc)
            raise _fetch_failed(variant, str(exc)) from None
        except OSError as exc:
            raise self._unusable(variant, exc) from None

    def _unusable(self, variant: str, exc: OSError) -> ApiError:
        # The folder lacks rights or space: the operator's to fix, told in the log only.
        log.error("the model cache %s cannot be used: %s", self.directory, exc)
        return ApiError("SERVICE_UNAVAILABLE", "The model cache (MODEL_CACHE_DIR) cannot be "
                        "read or written", {"variant": variant})

    def _remove_partial_files(self, variant: str) -> None:
        # Under the lock nobody else is writing: any partial file was left by a
        # worker that died mid-fetch.
        for stale in self.directory.glob(f".modnet-{variant}.*.part"):
            stale.unlink(missing_ok=True)

    def _fetch(self, variant: str, url: str, path: Path, deadline: float) -> int:
        """Stream ``url`` into ``path`` through a temporary file; returns the size."""
        descriptor, temporary = tempfile.mkstemp(dir=self.directory,
                                                 prefix=f".modnet-{variant}.", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as out:
                size = self._download(url, out, deadline)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return size

    def _download(self, url: str, out: BinaryIO, deadline: float) -> int:
        with requests.Session() as session:
            response = self._follow(session, url, deadline)
            with response:
                if not 200 <= response.status_code < 300:
                    raise FetchFailed(f"the upstream answered {response.status_code}")
                expected = _content_length(response)
                if expected is not None and expected > self.max_bytes:
                    raise FetchFailed(f"the model is {expected} bytes, over MODEL_MAX_MB")
                size = self._copy(response, out, deadline)
        if expected is not None and size != expected:
            raise FetchFailed(f"the upstream sent {size} of {expected} bytes")
        if size == 0:
            raise FetchFailed("the upstream sent an empty body")
        return size

    def _follow(self, session: requests.Session, url: str, deadline: float) -> requests.Response:
        """GET ``url``, following redirects by hand so each hop is checked."""
        origin = _origin(url)
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            if urlsplit(current).scheme.lower() not in _ALLOWED_SCHEMES:
                raise FetchFailed("the upstream redirected to a URL that is not http(s)")
            # identity: Content-Length then counts the bytes written to disk.
            headers = {"Accept-Encoding": "identity"}
            if self.token and _origin(current) == origin:
                headers["Authorization"] = f"Bearer {self.token}"
            try:
                response = session.get(current, headers=headers, stream=True,
                                       allow_redirects=False, timeout=_remaining(deadline))
            except requests.Timeout:
                raise FetchFailed("the upstream did not answer within MODEL_FETCH_TIMEOUT_MS") \
                    from None
            except requests.RequestException as exc:
                raise FetchFailed(f"the upstream is unreachable ({type(exc).__name__})") from None
            if not response.is_redirect:
                return response
            location = response.headers["Location"]
            response.close()
            current = urljoin(current, location)
        raise FetchFailed(f"the upstream redirected more than {MAX_REDIRECTS} times")

    def _copy(self, response: requests.Response, out: BinaryIO, deadline: float) -> int:
        raw: urllib3.HTTPResponse = response.raw
        size = 0
        try:
            while True:
                # read1 returns what has arrived, so a trickling upstream meets the
                # deadline between pieces instead of after a whole 64 KiB read.
                chunk = raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    return size
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchFailed(f"the model is over MODEL_MAX_MB ({self.max_bytes} bytes)")
                out.write(chunk)
                if time.monotonic() > deadline:
                    raise FetchFailed("the download passed MODEL_FETCH_TIMEOUT_MS")
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
                raise FetchFailed("the download passed MODEL_FETCH_TIMEOUT_MS") from None
            raise FetchFailed(f"the download broke off after {size} bytes "
                              f"({type(exc).__name__})") from None


def _read(variant: str, path: Path) -> Model:
    data = path.read_bytes()
    return Model(variant, data, hashlib.sha256(data).hexdigest())


def _fetch_failed(variant: str, reason: str) -> ApiError:
    return ApiError("MODEL_FETCH_FAILED", f"Could not fetch the {variant} model: {reason}",
                    {"variant": variant})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise FetchFailed("the upstream URL has a bad port") from None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchFailed("the upstream did not answer within MODEL_FETCH_TIMEOUT_MS")
    return remaining


def _content_length(response: requests.Response) -> int | None:
    raw = response.headers.get("Content-Length")
    if raw is None or response.headers.get("Content-Encoding", "identity") != "identity":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise FetchFailed(f"the upstream sent a bad Content-Length {raw!r}") from None
    if value < 0:
        raise FetchFailed(f"the upstream sent a bad Content-Length {raw!r}")
    return value
