"""The background-removal models (ONNX): MODNet from memory, disk or the upstream; U²-Netp
from the installed package.

MODNet (variants ``full`` and ``quantized``), tiers in order:
1. memory: the model bytes of each variant, held once per worker process;
2. disk: ``MODEL_CACHE_DIR/modnet-<variant>.onnx`` (default ``DATA_DIR/models``),
   shared by every worker of the host and kept across restarts;
3. the upstream (``MODEL_FULL_URL`` / ``MODEL_QUANTIZED_URL``), fetched once per host.

What is fetched must have the expected sha256 (``MODEL_*_SHA256``, by default the pinned
file's, whose size is then checked too) before it is cached. What is read back from disk
is checked again, against that hash or, when none is configured, against the digest
recorded beside the file when it was fetched: a file that fails is fetched anew, never
served. A fetch streams the body to a temporary file beside the model and renames it into
place only when it is complete and verified, so the disk never holds a half-written
model, even if the worker dies midway. A file lock per variant makes concurrent cold
requests from several workers wait for one fetch instead of each fetching.

U²-Netp (variant ``lite``) needs no network: the file inside the installed wheel,
located through ``importlib.metadata`` and checked against its pinned sha256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
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
from feather_server.services.model_pins import SIZE_OF_PINNED_SHA256, U2NETP, BundledFile
from feather_server.settings import Settings

log = logging.getLogger("feather.model")

DOWNLOADED = ("full", "quantized")  # MODNet, from the upstream
BUNDLED = "lite"  # U²-Netp, from the installed package
VARIANTS = (*DOWNLOADED, BUNDLED)
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
    """Serves MODNet from memory, disk or the upstream, in that order, and U²-Netp from
    the installed package."""

    def __init__(self, settings: Settings, bundled: BundledFile = U2NETP) -> None:
        self.directory = Path(settings.model_cache_dir or Path(settings.data_dir) / "models")
        self.urls = {"full": settings.model_full_url, "quantized": settings.model_quantized_url}
        self.sha256 = {"full": settings.model_full_sha256,
                       "quantized": settings.model_quantized_sha256}
        self.bundled = bundled
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
                model = self._bundled() if variant == BUNDLED else self._load(variant)
                self._memory[variant] = model
            return model

    def _bundled(self) -> Model:
        pin = self.bundled
        try:
            distribution = importlib.metadata.distribution(pin.distribution)
        except importlib.metadata.PackageNotFoundError:
            log.error("the bundled model's package %s is not installed", pin.distribution)
            raise _bundled_unavailable(f"its package {pin.distribution} is not installed "
                                       "(make deps installs it)") from None
        listed = next((f for f in distribution.files or () if f.as_posix() == pin.path), None)
        try:
            if listed is None:
                raise FileNotFoundError(pin.path)
            data = Path(str(listed.locate())).read_bytes()
        except OSError as exc:
            log.error("the bundled model %s of %s cannot be read: %s", pin.path,
                      pin.distribution, exc)
            raise _bundled_unavailable(f"{pin.path} is missing from the package "
                                       f"{pin.distribution}") from None
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != pin.size or digest != pin.sha256:
            log.error("the bundled model %s of %s is %d bytes with sha256 %s, not the pinned "
                      "%d bytes with sha256 %s", pin.path, pin.distribution, len(data), digest,
                      pin.size, pin.sha256)
            raise _bundled_unavailable("the installed file does not match its pinned sha256 "
                                       f"(reinstall {pin.distribution})")
        return Model(BUNDLED, data, digest)

    def _load(self, variant: str) -> Model:
        path = self.path(variant)
        try:
            cached = self._read_cached(variant, path)
        except OSError as exc:
            raise self._unusable(variant, exc) from None
        if cached is not None:
            return cached
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
                # Another worker may have fetched it while this one waited.
                cached = self._read_cached(variant, path)
                if cached is not None:
                    return cached
                self._remove_partial_files(variant)
                model = self._fetch(variant, url, path, deadline)
                log.info("fetched the %s model (%d bytes, sha256 %s) in %.1f s", variant,
                         len(model.data), model.etag, time.monotonic() - started)
                return model
        except LockTimeout:
            raise _fetch_failed(variant, "another worker was still fetching it when "
                                "MODEL_FETCH_TIMEOUT_MS passed") from None
        except FetchFailed as exc:
            log.warning("fetching the %s model failed: %s", variant, exc)
            raise _fetch_failed(variant, str(exc)) from None
        except OSError as exc:
            raise self._unusable(variant, exc) from None

    def _read_cached(self, variant: str, path: Path) -> Model | None:
        """The model on disk if there is one and it passes its check, else None."""
        if not path.is_file():
            return None
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        expected, source = self.sha256[variant], _sha256_env(variant)
        if not expected:
            expected, source = _recorded_digest(path), f"the digest in {_digest_path(path).name}"
        if not data or (expected and digest != expected):
            # Left in place: a verified fetch replaces it atomically; until then it is
            # not served.
            log.warning("the cached %s model %s does not match %s; fetching it again",
                        variant, path, source)
            return None
        return Model(variant, data, digest)

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

    def _fetch(self, variant: str, url: str, path: Path, deadline: float) -> Model:
        """Stream ``url`` into ``path`` through a temporary file, verified before the rename."""
        expected = self.sha256[variant]
        descriptor, temporary = tempfile.mkstemp(dir=self.directory,
                                                 prefix=f".modnet-{variant}.", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as out:
                data = self._download(url, out, deadline, SIZE_OF_PINNED_SHA256.get(expected))
                out.flush()
                os.fsync(out.fileno())
            digest = hashlib.sha256(data).hexdigest()
            if expected and digest != expected:
                raise FetchFailed(f"the upstream sent a file with sha256 {digest}, not the "
                                  f"{expected} of {_sha256_env(variant)}")
            # The digest goes first: a crash between the two renames leaves an older
            # model that fails its check, never a new model checked against nothing.
            _write_atomically(_digest_path(path), f"{digest}\n".encode())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return Model(variant, data, digest)

    def _download(self, url: str, out: BinaryIO, deadline: float,
                  expected_size: int | None) -> bytes:
        with requests.Session() as session:
            response = self._follow(session, url, deadline)
            with response:
                if not 200 <= response.status_code < 300:
                    raise FetchFailed(f"the upstream answered {response.status_code}")
                announced = _content_length(response)
                if announced is not None and announced > self.max_bytes:
                    raise FetchFailed(f"the model is {announced} bytes, over MODEL_MAX_MB")
                if None not in (announced, expected_size) and announced != expected_size:
                    raise FetchFailed(f"the upstream announced {announced} bytes; the pinned "
                                      f"model has {expected_size}")
                data = self._copy(response, out, deadline, expected_size)
        if announced is not None and len(data) != announced:
            raise FetchFailed(f"the upstream sent {len(data)} of {announced} bytes")
        if not data:
            raise FetchFailed("the upstream sent an empty body")
        if expected_size is not None and len(data) != expected_size:
            raise FetchFailed(f"the upstream sent {len(data)} bytes; the pinned model has "
                              f"{expected_size}")
        return data

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

    def _copy(self, response: requests.Response, out: BinaryIO, deadline: float,
              expected_size: int | None) -> bytes:
        raw: urllib3.HTTPResponse = response.raw
        data = bytearray()
        try:
            while True:
                # read1 returns what has arrived, so a trickling upstream meets the
                # deadline between pieces instead of after a whole 64 KiB read.
                chunk = raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    return bytes(data)
                data += chunk
                if len(data) > self.max_bytes:
                    raise FetchFailed(f"the model is over MODEL_MAX_MB ({self.max_bytes} bytes)")
                if expected_size is not None and len(data) > expected_size:
                    raise FetchFailed(f"the upstream sent more than the {expected_size} bytes "
                                      "of the pinned model")
                out.write(chunk)
                if time.monotonic() > deadline:
                    raise FetchFailed("the download passed MODEL_FETCH_TIMEOUT_MS")
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
                raise FetchFailed("the download passed MODEL_FETCH_TIMEOUT_MS") from None
            raise FetchFailed(f"the download broke off after {len(data)} bytes "
                              f"({type(exc).__name__})") from None


def _sha256_env(variant: str) -> str:
    return "MODEL_FULL_SHA256" if variant == "full" else "MODEL_QUANTIZED_SHA256"


def _digest_path(path: Path) -> Path:
    """Where the sha256 of a fetched model is recorded, for MODEL_*_SHA256=none."""
    return path.with_name(path.name + ".sha256")


def _recorded_digest(path: Path) -> str:
    """The digest recorded when ``path`` was fetched; empty for a file placed by hand."""
    try:
        return _digest_path(path).read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return ""


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _bundled_unavailable(reason: str) -> ApiError:
    return ApiError("SERVICE_UNAVAILABLE", f"The bundled lite model cannot be used: {reason}",
                    {"variant": BUNDLED})


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
