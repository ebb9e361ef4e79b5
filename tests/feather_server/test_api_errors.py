"""Every error row of the Feather document, and the envelope on every error."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from feather_core import CompressOptions, Limits
from feather_server import create_app
from feather_server.settings import Settings
from tests.api import post_image
from tests.faults import broken_encoders, jobs_with, slow_png_encoder
from tests.images import encode, photo


def _envelope(body: dict[str, object], code: str) -> None:
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]


def test_missing_file_is_invalid_input(client: FlaskClient) -> None:
    r = client.post("/api/compress", data={"quality": "80"}, content_type="multipart/form-data")
    assert r.status_code == 400
    _envelope(r.json, "INVALID_INPUT")
    assert "file" in r.json["error"]["details"]


def test_not_multipart_is_invalid_input(client: FlaskClient) -> None:
    r = client.post("/api/compress", json={"file": "x"})
    assert r.status_code == 400
    _envelope(r.json, "INVALID_INPUT")


def test_file_too_large(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), max_upload_mb=0.01,
                                       rate_limit_per_minute=0))
    client = app.test_client()
    r = post_image(client, b"\xff\xd8\xff" + b"0" * 20_000)
    assert r.status_code == 413
    _envelope(r.json, "FILE_TOO_LARGE")


def test_oversized_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), max_upload_mb=0.01,
                                       rate_limit_per_minute=0))
    client = app.test_client()
    body = b"x" * 5_000_000
    r = client.post("/api/compress", data=body,
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    _envelope(r.json, "FILE_TOO_LARGE")


@pytest.mark.parametrize(("data", "name"), [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "doc.png"),
    (b"8BPS\x00\x01" + b"\x00" * 40, "layers.png"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n", "vector.png"),
    (b"\x00\x00\x01\x00\x01\x00\x10\x10" + b"\x00" * 40, "favicon.png"),
])
def test_real_but_unsupported_formats(client: FlaskClient, data: bytes, name: str) -> None:
    r = post_image(client, data, name, content_type="image/png")
    assert r.status_code == 415
    _envelope(r.json, "UNSUPPORTED_FORMAT")


@pytest.mark.parametrize("data", [
    b"just some text, not an image",
    b"\xff\xd8\xff\xe0" + b"\x00" * 100,              # JPEG magic, then garbage
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,               # PNG signature, broken chunks
    b"GIF89a\x10\x00",                                 # truncated GIF
    b"",
])
def test_bytes_that_are_no_image(client: FlaskClient, data: bytes) -> None:
    r = post_image(client, data, "x.jpg")
    assert r.status_code == 422
    _envelope(r.json, "INVALID_IMAGE")


def test_truncated_jpeg_is_invalid_image(client: FlaskClient) -> None:
    data = encode(photo(400, 300), "JPEG")
    r = post_image(client, data[: len(data) // 3])
    assert r.status_code == 422
    _envelope(r.json, "INVALID_IMAGE")


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"")
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + struct.pack(">I", len(idat) - 4) + idat
            + struct.pack(">I", zlib.crc32(idat)))


def test_too_many_pixels_from_the_header(client: FlaskClient) -> None:
    r = post_image(client, _png_header(50_000, 50_000), "bomb.png")
    assert r.status_code == 422
    _envelope(r.json, "TOO_MANY_PIXELS")


def test_max_pixels_is_a_setting(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), max_pixels=10_000,
                                       rate_limit_per_minute=0))
    client = app.test_client()
    small = post_image(client, encode(photo(100, 100), "PNG"), "ok.png")
    big = post_image(client, encode(photo(101, 100), "PNG"), "big.png")
    assert small.status_code == 200
    assert big.status_code == 422
    _envelope(big.json, "TOO_MANY_PIXELS")


def test_animation_frames_count_towards_pixels(tmp_path: Path) -> None:
    from tests.images import animated_gif

    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), max_pixels=64 * 48 * 3,
                                       rate_limit_per_minute=0))
    r = post_image(app.test_client(), animated_gif(frames=4), "anim.gif")
    assert r.status_code == 422
    _envelope(r.json, "TOO_MANY_PIXELS")


def test_timeout_is_a_json_504(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), request_timeout_ms=1,
                                       rate_limit_per_minute=0))
    r = post_image(app.test_client(), encode(photo(1600, 1200), "PNG"), "p.png",
                   outputFormat="avif", effort=9)
    assert r.status_code == 504
    _envelope(r.json, "TIMEOUT")


def test_encoder_failure_is_processing_failed(app: Flask, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    data = encode(photo(50, 50), "PNG")
    with jobs_with(broken_encoders, monkeypatch):
        r = post_image(app.test_client(), data, "p.png")
    assert r.status_code == 500
    _envelope(r.json, "PROCESSING_FAILED")
    assert "Traceback" not in r.get_data(as_text=True)
    assert "PROCESSING_FAILED" in caplog.text


def test_unexpected_errors_are_internal_error(app: Flask, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    from feather_server.services import processing

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(processing, "compress", boom)
    r = post_image(app.test_client(), encode(photo(50, 50), "PNG"), "p.png")
    assert r.status_code == 500
    _envelope(r.json, "INTERNAL_ERROR")
    text = r.get_data(as_text=True)
    assert "secret internal detail" not in text
    assert "Traceback" not in text
    assert "secret internal detail" in caplog.text


def test_unknown_route_and_wrong_method_use_the_envelope(client: FlaskClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    _envelope(missing.json, "NOT_FOUND")
    wrong = client.get("/api/compress")
    assert wrong.status_code == 405
    _envelope(wrong.json, "METHOD_NOT_ALLOWED")
    assert "POST" in wrong.headers.get("Allow", "")


def test_file_given_as_a_text_field_is_missing(client: FlaskClient) -> None:
    r = client.post("/api/compress", data={"file": "not a file"},
                    content_type="multipart/form-data")
    assert r.status_code == 400
    _envelope(r.json, "INVALID_INPUT")


def test_worker_survives_a_bad_request(client: FlaskClient) -> None:
    post_image(client, b"\x89PNG\r\n\x1a\n" + b"\xff" * 64, "bad.png")
    good = post_image(client, encode(photo(40, 30), "PNG"), "ok.png")
    assert good.status_code == 200
    assert io.BytesIO(good.data).getbuffer().nbytes > 0


def test_a_step_that_overruns_still_answers_504_on_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    app = create_app(Settings.from_env({}, data_dir=str(tmp_path), request_timeout_ms=300,
                                       rate_limit_per_minute=0))
    with jobs_with(slow_png_encoder, monkeypatch) as runner:
        runner.compress(encode(photo(8, 8), "JPEG"), CompressOptions(), Limits())  # started
        started = time.monotonic()
        r = post_image(app.test_client(), encode(photo(50, 50), "PNG"), "p.png",
                       outputFormat="png")
    assert r.status_code == 504
    _envelope(r.json, "TIMEOUT")
    assert time.monotonic() - started < 2.5
