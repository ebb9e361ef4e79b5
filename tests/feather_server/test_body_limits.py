"""Request bodies against a real gunicorn: refused as soon as they are too big, a
stalled one answered 408, the worker's memory bounded whatever is sent, and normal
forms parsed as Werkzeug parses them."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug import Request as WerkzeugRequest
from werkzeug.test import EnvironBuilder

from tests.body_fixtures import (
    Part,
    form_chunks,
    form_length,
    memory_kb,
    post_raw,
    reset_peak,
)
from tests.images import encode, photo
from tests.server import GunicornServer

MB = 1_000_000
LIMIT = 20 * MB  # MAX_UPLOAD_MB's default
BODY_TIMEOUT_S = 1.5
# What the kernel's socket buffers on loopback hold beyond what the server has read.
IN_FLIGHT = 16 * MB
# "About twice MAX_UPLOAD_MB": an image and its watermark in memory, with the slack of
# growing buffers, the reader's 1 MB chunks and the parser's.
MEMORY_BOUND = int(2.5 * LIMIT) + 8 * MB
JPEG = encode(photo(320, 240), "JPEG")


class Service:
    def __init__(self, server: GunicornServer, data: Path) -> None:
        self.server = server
        self.data = data
        self.pid = server.worker_pids()[0]
        for _ in range(3):  # every lazy import done, every first-use buffer made
            assert requests.post(server.url + "/api/compress", files={"file": ("a.jpg", JPEG)},
                                 timeout=60).status_code == 200
        reset_peak(self.pid)
        self.baseline_kb = memory_kb(self.pid)["VmRSS"]

    def growth(self) -> int:
        """Bytes the worker's peak memory grew since the start, whatever came since."""
        assert self.server.worker_pids() == [self.pid], "the worker was replaced"
        return (memory_kb(self.pid)["VmHWM"] - self.baseline_kb) * 1024

    def post(self, parts: list[Part], path: str = "/api/compress", **kwargs: Any) -> Any:
        return post_raw(self.server.port, path, form_chunks(parts), form_length(parts),
                        **kwargs)

    def spool_folders(self) -> list[Path]:
        root = self.data / "uploads"
        return list(root.iterdir()) if root.exists() else []


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("limits")
    server = GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": "0",
                             "BODY_TIMEOUT_MS": str(int(BODY_TIMEOUT_S * 1000))}, workers=1)
    server.start(data)
    try:
        yield Service(server, data)
    finally:
        server.stop()


def test_a_body_longer_than_any_request_may_be_is_refused_before_it_is_read(
        service: Service) -> None:
    answer = service.post([Part("file", 600 * MB, "huge.tif")])
    assert answer.status == 413
    error = answer.json()["error"]
    assert error["code"] == "FILE_TOO_LARGE"
    assert "422 MB a request may carry" in error["message"]
    assert answer.sent < IN_FLIGHT
    assert service.growth() < MEMORY_BOUND


def test_a_huge_file_is_cut_off_at_the_limit(service: Service) -> None:
    answer = service.post([Part("file", 400 * MB, "huge.tif")])
    assert answer.status == 413
    assert answer.json() == {"error": {"code": "FILE_TOO_LARGE",
                                       "message": "The file exceeds the 20 MB upload limit"}}
    # The part is cut off at 20 MB; then at most 20 MB more are read (and dropped) to see
    # whether the request is a FluxImage batch, which answers in its own dialect.
    assert answer.sent < 2 * LIMIT + IN_FLIGHT
    assert service.growth() < MEMORY_BOUND


def test_a_batch_to_compress_names_its_file_that_is_too_large(service: Service) -> None:
    parts = [Part("file", 30 * MB, "first.jpg"), Part("file", 1000, "second.jpg"),
             Part("format", value=b"webp")]
    answer = service.post(parts)
    assert answer.status == 400
    assert answer.json() == {"error": "File first.jpg exceeds the 20MB limit",
                             "message": "File first.jpg exceeds the 20MB limit"}
    assert service.growth() < MEMORY_BOUND


def test_memory_holds_an_image_and_its_watermark_at_most(service: Service) -> None:
    # Feather: an image and a watermark at the limit, both kept in memory (and answered
    # 400 for the quality, so that only reading them counts here).
    for _ in range(3):
        parts = [Part("file", LIMIT, "a.jpg", b"\xff\xd8\xff"), Part("quality", value=b"500"),
                 Part("watermarkFile", LIMIT, "w.png")]
        answer = service.post(parts)
        assert answer.status == 400
        assert answer.json()["error"]["details"]["quality"].startswith(
            "must be a number between 1 and 100")
        assert service.growth() < MEMORY_BOUND

    # FluxImage on /api/compress: two files in memory, the rest spooled, then one too big.
    parts = [Part("file", LIMIT, f"{i}.jpg") for i in range(5)] + [Part("file", 300 * MB, "x.jpg")]
    answer = service.post(parts)
    assert answer.status == 400
    assert answer.json()["error"] == "File x.jpg exceeds the 20MB limit"
    assert answer.sent < 6 * LIMIT + IN_FLIGHT
    assert service.growth() < MEMORY_BOUND
    assert service.spool_folders() == []


def test_a_batch_is_spooled_not_held_in_memory(service: Service) -> None:
    parts = [Part("file", LIMIT, f"{i}.jpg") for i in range(19)]
    parts.append(Part("file", 30 * MB, "last.jpg"))
    answer = service.post(parts, path="/api/batch")
    assert answer.status == 400
    assert answer.json()["error"] == "File last.jpg exceeds the 20MB limit"
    assert answer.sent > 19 * LIMIT  # every file was read ...
    assert service.growth() < MEMORY_BOUND  # ... into the spool folder, now gone
    assert service.spool_folders() == []


def test_a_stalled_body_is_answered_408_and_the_worker_serves_on(service: Service) -> None:
    # The case: Content-Length: 20000000, a few bytes, then silence.
    parts = [Part("file", LIMIT - 200, "photo.jpg")]
    started = time.monotonic()
    answer = service.post(parts, stall_after=5000, timeout=60)
    waited = time.monotonic() - started
    assert answer.status == 408
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": {
        "code": "REQUEST_TIMEOUT",
        "message": f"The request body stopped arriving (nothing for {BODY_TIMEOUT_S:g} s)"}}
    assert BODY_TIMEOUT_S <= waited < BODY_TIMEOUT_S + 10
    r = requests.post(service.server.url + "/api/compress", files={"file": ("a.jpg", JPEG)},
                      timeout=60)
    assert r.status_code == 200
    assert service.server.worker_pids() == [service.pid]  # nobody was killed

    # A batch stalled mid-file answers in its own dialect.
    parts = [Part("file", 1000, "a.jpg"), Part("file", LIMIT - 200, "b.jpg")]
    answer = service.post(parts, path="/api/batch", stall_after=3 * MB, timeout=60)
    assert answer.status == 408
    assert answer.json()["error"] == "REQUEST_TIMEOUT"
    assert service.spool_folders() == []


def test_a_worker_killed_mid_upload_leaves_no_spool_folder(tmp_path: Path) -> None:
    server = GunicornServer({"DATA_DIR": str(tmp_path), "RATE_LIMIT_PER_MINUTE": "0",
                             "BODY_TIMEOUT_MS": "60000"}, workers=1)
    server.start(tmp_path)
    try:
        parts = [Part("file", 2 * MB, f"{i}.jpg") for i in range(3)]
        parts.append(Part("file", LIMIT - 200, "never-finished.jpg"))
        upload = threading.Thread(target=post_raw, args=(
            server.port, "/api/batch", form_chunks(parts), form_length(parts)),
            kwargs={"stall_after": 7 * MB, "timeout": 30})
        upload.start()
        root = tmp_path / "uploads"

        def spooled_files() -> int:
            return len(list(root.glob("*/*")))

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and spooled_files() < 4:
            time.sleep(0.05)
        assert len(list(root.iterdir())) == 1
        assert spooled_files() == 4
        os.kill(server.worker_pids()[0], signal.SIGKILL)
        upload.join(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(root.iterdir()):
            time.sleep(0.05)
        assert list(root.iterdir()) == []  # the master removed it
    finally:
        server.stop()


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    data = tmp_path_factory.mktemp("echo")
    server = GunicornServer({"DATA_DIR": str(data), "MAX_UPLOAD_MB": "5"}, workers=1,
                            app="tests.echo_app:create_echo_app()", ready_path="/health")
    server.start(data)
    yield server
    server.stop()


def reference(body: bytes, content_type: str) -> dict[str, Any]:
    environ = EnvironBuilder(method="POST", input_stream=io.BytesIO(body),
                             content_length=len(body), content_type=content_type).get_environ()
    request = WerkzeugRequest(environ)
    return {"fields": [[k, v] for k, v in request.form.items(multi=True)],
            "files": [[name, f.filename, hashlib.sha256(f.read()).hexdigest()]
                      for name, f in request.files.items(multi=True)]}


def test_forms_through_gunicorn_parse_as_before(echo: GunicornServer) -> None:
    files = [("file", ("straße 1.jpg", JPEG, "image/jpeg")),
             ("file", ("写真.png", os.urandom(3 * MB), "image/png")),
             ("file", ("empty.gif", b"", "image/gif")),
             ("watermarkFile", ("logo.png", encode(photo(60, 30), "PNG"), "image/png"))]
    fields = [("format", "webp"), ("quality", "82"), ("seoKeywords", "chaussures rouges, été"),
              ("aiContext", "line one\r\nline two")]
    prepared = requests.Request("POST", echo.url + "/echo", files=files, data=fields).prepare()
    assert isinstance(prepared.body, bytes)
    content_type = str(prepared.headers["Content-Type"])
    for path in ("/echo", "/echo-batch"):
        prepared.url = echo.url + path
        r = requests.Session().send(prepared, timeout=60)
        assert r.status_code == 200, r.text
        got = r.json()
        assert {"fields": got["fields"],
                "files": [[f["name"], f["filename"], f["sha256"]] for f in got["files"]]} \
            == reference(prepared.body, content_type)
        where = [f["where"] for f in got["files"]]
        assert where == (["memory", "memory", "spool", "spool"] if path == "/echo"
                         else ["spool"] * 4)


def test_a_chunked_body_is_read_within_the_same_limits(echo: GunicornServer) -> None:
    parts = [Part("file", 2 * MB, "a.jpg"), Part("quality", value=b"80")]
    r = requests.post(echo.url + "/echo", data=form_chunks(parts, step=64_000), timeout=60,
                      headers={"Content-Type": "multipart/form-data; "
                                               "boundary=feather-test-boundary"})
    assert r.status_code == 200
    assert [f["size"] for f in r.json()["files"]] == [2 * MB]
    assert r.json()["fields"] == [["quality", "80"]]

    parts = [Part("file", 9 * MB, "big.jpg")]
    r = requests.post(echo.url + "/echo", data=form_chunks(parts, step=64_000), timeout=60,
                      headers={"Content-Type": "multipart/form-data; "
                                               "boundary=feather-test-boundary"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "FILE_TOO_LARGE"
