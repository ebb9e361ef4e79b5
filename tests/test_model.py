"""GET /api/model against a real upstream HTTP server on 127.0.0.1."""

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

from feather_server import create_app
from feather_server.settings import Settings
from tests.model_fixtures import (
    describe,
    expected_matte,
    modnet_like,
    modnet_like_quantized,
    run_model,
)
from tests.server import GunicornServer, free_port
from tests.upstream import Route, Upstream

LOCK = ".modnet-full.lock"


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


@pytest.fixture
def make_client(tmp_path: Path, cache_dir: Path) -> MakeClient:
    """A fresh app (an empty memory cache) over the shared cache folder."""

    def make(**overrides: Any) -> FlaskClient:
        overrides = {"rate_limit_per_minute": 0, **overrides}
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
    assert set(files_in(cache_dir)) == {"modnet-full.onnx", LOCK}


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
    for restarted in (make_client(model_full_url=url), make_client()):
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
    assert set(files_in(cache_dir)) == {"modnet-full.onnx", LOCK}


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


@pytest.mark.parametrize("variant", ["large", "FULL-ish", "../full"])
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
    response = make_client().get("/api/model")
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
    assert process.stdin is not None and process.stdout is not None
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


# --- several gunicorn workers -----------------------------------------------------------


def test_concurrent_cold_requests_across_workers_fetch_once(
        upstream: Upstream, models: dict[str, bytes], tmp_path: Path) -> None:
    # The upstream holds its answer long enough for every request to arrive while the
    # first worker is still fetching; the access log names the worker of each request.
    url = upstream.route("/modnet.onnx", Route(body=models["full"], delay=2.0))
    env = {"DATA_DIR": str(tmp_path / "var"), "RATE_LIMIT_PER_MINUTE": "0",
           "MODEL_CACHE_DIR": str(tmp_path / "models"), "MODEL_FULL_URL": url,
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
