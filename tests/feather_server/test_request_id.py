"""X-Request-Id: accepted or generated, in every response, access log line and app log line."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from feather_server import create_app
from feather_server.settings import Settings
from tests.images import encode, photo
from tests.server import GunicornServer

JPEG = encode(photo(64, 48), "JPEG")
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    data = tmp_path_factory.mktemp("rid")
    gunicorn = GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": "1",
                               "LOG_LEVEL": "INFO"}, workers=2)
    gunicorn.start(data)
    yield gunicorn
    gunicorn.stop()


def access_line(server: GunicornServer, request_id: str) -> str:
    # gunicorn writes the access line just after sending the response: wait for it.
    deadline = time.monotonic() + 30
    while True:
        lines = [line for line in server.log().splitlines() if f"rid={request_id} " in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1, server.log()
    return lines[0]


def test_generated_when_absent_and_in_the_access_log(server: GunicornServer) -> None:
    ids = set()
    for path in ("/api/health", "/api/formats", "/no/such/page"):
        response = requests.get(server.url + path, timeout=60)
        request_id = response.headers["X-Request-Id"]
        assert GENERATED.fullmatch(request_id)
        ids.add(request_id)
        line = access_line(server, request_id)
        assert f'"GET {path} HTTP/1.1" {response.status_code} ' in line
        assert re.search(r" \d+ms ", line)  # the duration
    assert len(ids) == 3


def test_a_client_id_is_kept_and_a_bad_one_replaced(server: GunicornServer) -> None:
    mine = "checkout-7f3a.retry:2"
    kept = requests.get(server.url + "/api/health", headers={"X-Request-Id": mine}, timeout=60)
    assert kept.headers["X-Request-Id"] == mine
    access_line(server, mine)
    for hostile in ('a b"c', "x" * 500, "id\twith\ttabs"):
        replaced = requests.get(server.url + "/api/health", headers={"X-Request-Id": hostile},
                                timeout=60)
        assert GENERATED.fullmatch(replaced.headers["X-Request-Id"])


def test_app_log_lines_carry_the_request_id(server: GunicornServer) -> None:
    def compress() -> requests.Response:
        return requests.post(server.url + "/api/compress",
                             files={"file": ("photo.jpg", JPEG, "image/jpeg")}, timeout=120)

    assert compress().status_code == 200
    limited = compress()  # the limit is 1: the limiter logs this one
    assert limited.status_code == 429
    request_id = limited.headers["X-Request-Id"]
    app_lines = [line for line in server.log().splitlines()
                 if f"[{request_id}]" in line and "flask-limiter" in line]
    assert app_lines
    assert "exceeded" in app_lines[0]
    assert " 429 " in access_line(server, request_id)


def test_every_record_written_during_a_request_has_its_id(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), rate_limit_per_minute=0))

    @app.get("/api/log-probe")
    def probe() -> str:
        logging.getLogger("feather.probe").warning("inside the request")
        return "ok"

    with caplog.at_level(logging.INFO):
        response = app.test_client().get("/api/log-probe", headers={"X-Request-Id": "probe-1"})
    assert response.headers["X-Request-Id"] == "probe-1"
    record = next(r for r in caplog.records if r.name == "feather.probe")
    assert record.request_id == "probe-1"  # type: ignore[attr-defined]
    logging.getLogger("feather.probe").warning("outside any request")
    assert caplog.records[-1].request_id == "-"  # type: ignore[attr-defined]
