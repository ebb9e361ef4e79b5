"""Names and MIME types lie; the bytes decide what a file is."""

from __future__ import annotations

import io
import struct

import pytest
from flask.testing import FlaskClient
from PIL import Image

from tests.helpers import open_image
from tests.images import encode, photo


def _psd() -> bytes:
    # Header of a 3-channel 8-bit RGB Photoshop file, 16 x 16, followed by empty sections.
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 16, 16, 8, 3)
    return header + b"\x00" * 4 * 3 + struct.pack(">H", 0) + b"\x00" * (16 * 16 * 3)


def _saved(fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = photo(32, 32)
    image.save(buffer, fmt)
    return buffer.getvalue()


FOREIGN = {
    "eps": lambda: _saved("EPS"),
    "psd": _psd,
    "pdf": lambda: _saved("PDF"),
    "ico": lambda: _saved("ICO"),
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
@pytest.mark.parametrize("disguise", ["name", "mime", "both"])
def test_foreign_format_dressed_as_png_is_415(client: FlaskClient, kind: str,
                                              disguise: str) -> None:
    data = FOREIGN[kind]()
    name = "photo.png" if disguise in ("name", "both") else f"file.{kind}"
    mime = "image/png" if disguise in ("mime", "both") else "application/octet-stream"
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), name, mime)})
    assert response.status_code == 415, response.get_json()
    assert response.get_json()["error"]["code"] == "UNSUPPORTED_FORMAT"


def test_jpeg_named_png_is_processed_as_jpeg(client: FlaskClient) -> None:
    image = photo(120, 80)
    data = encode(image, "JPEG", quality=95)
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), "photo.png",
                                                           "image/png")})
    assert response.status_code == 200
    # Decoded as the JPEG it is, then auto's choice for a photo: WebP, named after it.
    assert response.headers["Content-Type"] == "image/webp"
    assert response.headers["X-Output-Format"] == "webp"
    assert "photo-compressed.webp" in response.headers["Content-Disposition"]
    out = open_image(response.data)
    assert out.format == "WEBP"
    assert out.size == (120, 80)


def test_png_named_exe_is_processed_as_png(client: FlaskClient) -> None:
    data = encode(photo(40, 30, mode="RGBA"), "PNG")
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), "setup.exe",
                                                           "application/x-msdownload")})
    assert response.status_code == 200
    out = open_image(response.data)
    assert out.format == "WEBP"
    assert out.mode == "RGBA"


def test_text_named_png_is_invalid_image(client: FlaskClient) -> None:
    response = client.post("/api/compress", data={"file": (io.BytesIO(b"hello, world\n" * 20),
                                                           "image.png", "image/png")})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "INVALID_IMAGE"


def test_flux_dialect_reports_a_lie_without_a_500(client: FlaskClient) -> None:
    data = FOREIGN["pdf"]()
    good = encode(photo(32, 32), "JPEG")
    response = client.post("/api/compress", data={
        "file": [(io.BytesIO(data), "a.png", "image/png"), (io.BytesIO(good), "b.jpg")],
    })
    assert response.status_code < 500
    assert response.is_json


def test_pillow_would_open_these_but_feather_does_not() -> None:
    # Guards the premise of the 415 tests: the files are real, readable formats.
    for kind in ("eps", "pdf", "ico"):
        if kind == "pdf":
            assert FOREIGN[kind]().startswith(b"%PDF")
            continue
        with Image.open(io.BytesIO(FOREIGN[kind]())) as im:
            assert im.format in ("EPS", "ICO")
