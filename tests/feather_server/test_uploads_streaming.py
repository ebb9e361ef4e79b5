"""Multipart bodies are parsed as they arrive: the same form as Werkzeug's parser finds,
every part within its limit, batches spooled to a private folder that goes away."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug import Request as WerkzeugRequest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from feather_server import create_app
from feather_server.http.multipart import READ_CHUNK
from feather_server.settings import Settings
from tests.echo_app import create_echo_app
from tests.filesystems import small_tmpfs
from tests.images import encode, photo

BOUNDARY = "----featherBoundary7MA4YWxkTrZu0gW"
LIMIT = 3_000_000  # MAX_UPLOAD_MB=3

FilePart = tuple[str, str | None, bytes, dict[str, str]]


def body(parts: list[FilePart], boundary: str = BOUNDARY) -> bytes:
    out = io.BytesIO()
    for name, filename, data, headers in parts:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(f"Content-Disposition: {disposition}\r\n".encode())
        for key, value in headers.items():
            out.write(f"{key}: {value}\r\n".encode())
        out.write(b"\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


def field(name: str, value: str, **headers: str) -> FilePart:
    return (name, None, value.encode(), {k.replace("_", "-"): v for k, v in headers.items()})


def upload(name: str, filename: str, data: bytes) -> FilePart:
    return (name, filename, data, {"Content-Type": "application/octet-stream"})


def post(client: FlaskClient, path: str, data: bytes, boundary: str = BOUNDARY,
         **headers: str) -> Any:
    return client.post(path, data=data, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", **headers})


def reference(data: bytes, boundary: str = BOUNDARY) -> dict[str, Any]:
    """What Werkzeug's own parser makes of the body."""
    environ = EnvironBuilder(method="POST", input_stream=io.BytesIO(data),
                             content_length=len(data),
                             content_type=f"multipart/form-data; boundary={boundary}"
                             ).get_environ()
    request = WerkzeugRequest(environ)
    request.max_form_memory_size = None
    return {
        "fields": [[k, v] for k, v in request.form.items(multi=True)],
        "files": [[name, f.filename, hashlib.sha256(f.read()).hexdigest()]
                  for name, f in request.files.items(multi=True)],
    }


def parsed(answer: dict[str, Any]) -> dict[str, Any]:
    return {"fields": answer["fields"],
            "files": [[f["name"], f["filename"], f["sha256"]] for f in answer["files"]]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, data_dir=str(tmp_path / "var"), max_upload_mb=LIMIT / 1e6,
                             rate_limit_per_minute=0)


@pytest.fixture
def echo(settings: Settings) -> FlaskClient:
    return create_echo_app(settings).test_client()


def spool_folders(settings: Settings) -> list[Path]:
    root = Path(settings.data_dir) / "uploads"
    return list(root.iterdir()) if root.exists() else []


JPEG = encode(photo(200, 150), "JPEG")
# Bytes that look like the end of a part, a boundary without its line break, lone CRs
# and LFs: the parser must take them all as data.
TRICKY = (b"\r\n--" + BOUNDARY[:-3].encode() + b"\r\n\r\r\n\n--" + BOUNDARY.encode()
          + b"x\r\n-" + os.urandom(3000) + b"\r")


@pytest.mark.parametrize("parts", [
    [upload("file", "photo.jpg", JPEG)],
    [upload("file", "photo.jpg", JPEG), field("outputFormat", "webp"), field("quality", "80"),
     upload("watermarkFile", "logo.png", encode(photo(40, 20), "PNG")),
     field("watermarkPosition", "bottom-right")],
    [field("format", "webp"), upload("file", "ä ö ü ß 照片.jpg", JPEG),
     upload("file", "C:\\Users\\me\\b.jpg", TRICKY), upload("file", "c.jpg", b""),
     field("seoKeywords", "красные кроссовки, 運動鞋"), field("language", "Русский")],
    [upload("file", "", b""), field("empty", ""), field("repeated", "1"),
     field("repeated", "2"),
     field("latin", "caf\xe9", Content_Type="text/plain; charset=iso-8859-1")],
    # A file whose data crosses the reader's chunk edges with a near-boundary there.
    [upload("file", "big.bin", os.urandom(READ_CHUNK - 40) + TRICKY + os.urandom(READ_CHUNK)),
     field("after", "yes")],
])
def test_forms_parse_as_werkzeug_parses_them(echo: FlaskClient, settings: Settings,
                                             parts: list[FilePart]) -> None:
    data = body(parts)
    r = post(echo, "/echo", data)
    assert r.status_code == 200, r.json
    assert parsed(r.json) == reference(data)
    assert spool_folders(settings) == []


def test_an_image_and_its_watermark_stay_in_memory_the_rest_is_spooled(
        echo: FlaskClient, settings: Settings) -> None:
    parts = [upload("file", f"{i}.jpg", os.urandom(1000 + i)) for i in range(4)]
    r = post(echo, "/echo", body(parts))
    assert [f["where"] for f in r.json["files"]] == ["memory", "memory", "spool", "spool"]
    assert [f["size"] for f in r.json["files"]] == [1000, 1001, 1002, 1003]
    assert all(f["private"] for f in r.json["files"] if f["where"] == "spool")
    assert spool_folders(settings) == []  # removed when the request ended

    r = post(echo, "/echo-batch", body(parts))
    assert [f["where"] for f in r.json["files"]] == ["spool"] * 4
    assert parsed(r.json) == reference(body(parts))
    assert spool_folders(settings) == []


def test_a_part_past_the_limit_is_cut_off_in_either_dialect(echo: FlaskClient,
                                                            settings: Settings) -> None:
    parts = [upload("file", "ok.jpg", b"x" * LIMIT), upload("file", "ok2.jpg", b"x" * 10),
             upload("file", "spooled.jpg", b"x" * 100),
             upload("file", "huge.jpg", b"x" * (LIMIT + 1))]
    r = post(echo, "/echo", body(parts))
    assert r.status_code == 413
    assert r.json == {"error": {"code": "FILE_TOO_LARGE",
                                "message": "The file exceeds the 3 MB upload limit"}}
    r = post(echo, "/flux", body(parts))
    assert r.status_code == 400
    assert r.json == {"error": "File huge.jpg exceeds the 3MB limit",
                      "message": "File huge.jpg exceeds the 3MB limit"}
    assert spool_folders(settings) == []  # the spooled part went with the request


@pytest.mark.parametrize(("parts", "status"), [
    ([upload("watermarkFile", "logo.png", b"x" * (LIMIT + 1)), field("quality", "80")], 413),
    ([field("quality", "80"), upload("file", "huge.jpg", b"x" * (LIMIT + 1)),
      upload("file", "b.jpg", b"x")], 400),  # FluxImage-shaped by its second file
    ([upload("file", "huge.jpg", b"x" * (LIMIT + 1)), field("format", "webp")], 400),
    ([upload("file", "huge.jpg", b"x" * (LIMIT + 1))], 413),
])
def test_compress_answers_a_too_large_file_in_the_requests_dialect(
        tmp_path: Path, parts: list[FilePart], status: int) -> None:
    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), max_upload_mb=LIMIT / 1e6,
                                       rate_limit_per_minute=0))
    r = post(app.test_client(), "/api/compress", body(parts))
    assert r.status_code == status
    if status == 400:
        name = parts[1][1] if parts[0][1] is None else parts[0][1]
        assert r.json["error"] == f"File {name} exceeds the 3MB limit"
    else:
        assert r.json["error"]["code"] == "FILE_TOO_LARGE"


def test_the_batch_endpoint_names_the_file_that_is_too_large(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), max_upload_mb=LIMIT / 1e6,
                                       rate_limit_per_minute=0))
    parts = [upload("file", "a.jpg", JPEG), upload("file", "b.jpg", b"x" * (LIMIT + 1))]
    r = post(app.test_client(), "/api/batch", body(parts))
    assert r.status_code == 400
    assert r.json == {"error": "File b.jpg exceeds the 3MB limit",
                      "message": "File b.jpg exceeds the 3MB limit"}


class CountingStream:
    """A request body that counts what is read of it."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        data = self._data.read(size)
        self.read_bytes += len(data)
        return data


def test_a_body_longer_than_any_request_may_be_is_refused_unread(app: Flask) -> None:
    data = body([upload("file", "a.jpg", b"x" * 100)])
    stream = CountingStream(data)
    limit = app.config["MAX_CONTENT_LENGTH"]
    environ = EnvironBuilder(path="/api/convert", method="POST", data=data,
                             content_type=f"multipart/form-data; boundary={BOUNDARY}"
                             ).get_environ()
    environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(limit + 1)})
    answer, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("413 ")
    error = json.loads(b"".join(answer))["error"]
    assert error["code"] == "FILE_TOO_LARGE"
    assert "a request may carry" in error["message"]
    assert stream.read_bytes == 0


def test_fields_are_limited_together(echo: FlaskClient) -> None:
    parts = [field(f"f{i}", "v" * 200_000) for i in range(3)]
    r = post(echo, "/echo", body(parts))
    assert r.status_code == 413
    assert r.json["error"]["code"] == "FILE_TOO_LARGE"
    assert "fields" in r.json["error"]["message"]


def test_too_many_parts(echo: FlaskClient) -> None:
    r = post(echo, "/echo", body([field("f", "") for _ in range(1001)]))
    assert r.status_code == 413


def test_a_malformed_body_is_an_empty_form(client: FlaskClient) -> None:
    data = body([upload("file", "a.jpg", JPEG)])
    for broken in (data[: len(data) // 2], b"no multipart here at all"):
        r = post(client, "/api/compress", broken)
        assert r.status_code == 400
        assert r.json["error"]["details"] == {"file": "is required"}


@pytest.fixture
def small_spool(settings: Settings) -> Iterator[Path]:
    with small_tmpfs(Path(settings.data_dir) / "uploads", "600k") as uploads:
        yield uploads


def test_a_full_spool_disk_is_a_503(echo: FlaskClient, small_spool: Path) -> None:
    parts = [upload("file", f"{i}.jpg", os.urandom(400_000)) for i in range(3)]
    r = post(echo, "/echo-batch", body(parts))
    assert r.status_code == 503
    assert r.json == {"error": {"code": "SERVICE_UNAVAILABLE",
                                "message": "The upload could not be stored for processing"}}
    assert list(small_spool.iterdir()) == []
    r = post(echo, "/echo-batch", body(parts[:1]))  # what fits is taken as before
    assert r.status_code == 200
