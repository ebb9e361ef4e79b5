"""GET /metrics: Prometheus text, summed over gunicorn workers (multiprocess mode),
including workers recycled by max_requests; absent unless enabled."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from feather_server import create_app
from feather_server.settings import Settings
from tests.images import encode, photo
from tests.server import GunicornServer

JPEG = encode(photo(80, 60), "JPEG")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def served_pids(server: GunicornServer, requests_sent: int) -> set[str]:
    # gunicorn writes an access line just after the response: wait for all of them.
    deadline = time.monotonic() + 30
    while True:
        lines = [line for line in server.log().splitlines() if '"POST /api/compress ' in line]
        if len(lines) >= requests_sent or time.monotonic() > deadline:
            return {line.split("pid=")[1].split()[0] for line in lines}
        time.sleep(0.05)


def test_metrics_sum_every_worker(tmp_path: Path) -> None:
    # MAX_REQUESTS=4 recycles workers during the test: a dead worker's counts must stay.
    server = GunicornServer({"DATA_DIR": str(tmp_path), "RATE_LIMIT_PER_MINUTE": "0",
                             "METRICS_ENABLED": "true", "MAX_REQUESTS": "4",
                             "MAX_REQUESTS_JITTER": "0"}, workers=2)
    server.start(tmp_path)
    try:
        def good(_: int) -> requests.Response:
            return requests.post(server.url + "/api/compress",
                                 files={"file": ("photo.jpg", JPEG, "image/jpeg")},
                                 timeout=120)

        with ThreadPoolExecutor(max_workers=4) as pool:
            ok = list(pool.map(good, range(10)))
        bad = [requests.post(server.url + "/api/compress", timeout=60) for _ in range(3)]
        assert [r.status_code for r in ok] == [200] * 10
        assert [r.status_code for r in bad] == [400] * 3
        sent = sum(int(r.request.headers.get("Content-Length", 0)) for r in ok + bad)
        received = sum(len(r.content) for r in ok + bad)

        assert len(served_pids(server, 13)) >= 3  # two workers, and at least one recycled

        # Whichever worker answers a scrape, it reports the whole service.
        for _ in range(4):
            scrape = requests.get(server.url + "/metrics", timeout=60)
            assert scrape.status_code == 200
            assert scrape.headers["Content-Type"].startswith("text/plain")
            found = samples(scrape.text)
            compress = {"endpoint": "compress.compress"}
            assert value(found, "feather_http_requests_total", method="POST", status="200",
                         **compress) == 10
            assert value(found, "feather_http_requests_total", method="POST", status="400",
                         **compress) == 3
            assert value(found, "feather_request_duration_seconds_count", **compress) == 13
            assert value(found, "feather_request_duration_seconds_bucket", le="+Inf",
                         **compress) == 13
            assert value(found, "feather_request_duration_seconds_sum", **compress) > 0
            assert value(found, "feather_request_bytes_total", **compress) == sent
            assert value(found, "feather_response_bytes_total", **compress) == received
    finally:
        server.stop()


def test_metrics_are_off_unless_enabled(live_server: GunicornServer) -> None:
    assert requests.get(live_server.url + "/metrics", timeout=60).status_code == 404


def test_single_process_metrics_without_gunicorn(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), rate_limit_per_minute=0,
                                       metrics_enabled=True))
    client = app.test_client()
    before = value(samples(client.get("/metrics").get_data(as_text=True)),
                   "feather_http_requests_total", endpoint="health.formats", method="GET",
                   status="200")
    client.get("/api/formats")
    after = value(samples(client.get("/metrics").get_data(as_text=True)),
                  "feather_http_requests_total", endpoint="health.formats", method="GET",
                  status="200")
    assert after == before + 1


def test_what_goes_wrong_is_counted(tmp_path: Path) -> None:
    server = GunicornServer({"DATA_DIR": str(tmp_path), "RATE_LIMIT_PER_MINUTE": "0",
                             "METRICS_ENABLED": "true", "REQUEST_TIMEOUT_MS": "700",
                             "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"},
                            workers=2)
    server.start(tmp_path)
    try:
        import numpy as np
        from PIL import Image

        noise = np.random.default_rng(3).integers(0, 256, (900, 900, 3), dtype=np.uint8)
        slow = encode(Image.fromarray(noise), "PNG")
        statuses = [
            requests.post(server.url + "/api/compress", files={"file": ("a.jpg", JPEG)},
                          timeout=60).status_code,
            requests.post(server.url + "/api/compress", files={"file": ("x.png", b"nope")},
                          timeout=60).status_code,
            requests.post(server.url + "/api/compress", files={"file": ("n.png", slow)},
                          data={"outputFormat": "avif", "effort": "9"}, timeout=60).status_code,
            requests.post(server.url + "/api/compress", files={"file": ("a.jpg", JPEG)},
                          headers={"Authorization": "Bearer flx_live_" + "0" * 40},
                          timeout=60).status_code,
        ]
        assert statuses == [200, 422, 504, 503]
        found = samples(requests.get(server.url + "/metrics", timeout=60).text)
        assert value(found, "feather_refusals_total", code="INVALID_IMAGE") == 1
        assert value(found, "feather_refusals_total", code="TIMEOUT") == 1
        assert value(found, "feather_refusals_total", code="SERVICE_UNAVAILABLE") == 1
        assert value(found, "feather_jobs_total", outcome="timeout") == 1
        assert value(found, "feather_jobs_total", outcome="failed") == 1
        assert value(found, "feather_jobs_total", outcome="ok") == 1
        assert value(found, "feather_images_total", format="webp") == 1
        assert value(found, "feather_image_input_bytes_total", format="webp") == len(JPEG)
        assert value(found, "feather_dependency_errors_total",
                     part="the accounts database") == 1
    finally:
        server.stop()


def test_json_logs_carry_the_request_id(tmp_path: Path) -> None:
    import json

    server = GunicornServer({"DATA_DIR": str(tmp_path), "RATE_LIMIT_PER_MINUTE": "0",
                             "LOG_FORMAT": "json"}, workers=1)
    server.start(tmp_path)
    try:
        answer = requests.post(server.url + "/api/compress", files={"file": ("x.png", b"no")},
                               headers={"X-Request-Id": "trace-42"}, timeout=60)
        assert answer.status_code == 422
        deadline = time.monotonic() + 10
        while '"trace-42"' not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert any(line["request_id"] == "trace-42" and line["status"] == "422" for line in access)
    assert all({"time", "level", "logger", "message" if line["logger"] != "gunicorn.access"
                else "request"} <= set(line) for line in lines)
