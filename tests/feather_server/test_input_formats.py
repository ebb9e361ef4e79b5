"""All eleven input formats are recognised by their bytes, not by name or MIME type."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.api import post_image
from tests.helpers import assert_image_similar, open_image
from tests.images import encode, photo

SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="160" '
       b'height="120" viewBox="0 0 16 12"><rect width="8" height="12" fill="#d01010"/>'
       b'<rect x="8" width="8" height="12" fill="#1010d0"/></svg>')


# A photo becomes WebP under auto (curl's */*), unless the input itself is smaller: an AVIF
# input may come back as it is.
@pytest.mark.parametrize(("fmt", "params", "auto_out"), [
    ("JPEG", {"quality": 95}, {"WEBP"}),
    ("PNG", {}, {"WEBP"}),
    ("WEBP", {"quality": 95}, {"WEBP"}),
    ("AVIF", {"quality": 90}, {"AVIF", "WEBP"}),
    ("HEIF", {"quality": 90}, {"WEBP"}),
    ("TIFF", {}, {"WEBP"}),
    ("GIF", {}, {"WEBP"}),
    ("BMP", {}, {"WEBP"}),
])
def test_raster_formats_decode_and_follow_the_auto_rule(
    client: FlaskClient, fmt: str, params: dict[str, int], auto_out: set[str]
) -> None:
    source = photo(160, 120)
    data = encode(source, fmt, **params)
    # A misleading name and MIME type change nothing: the bytes decide.
    r = post_image(client, data, "upload.bin", content_type="application/octet-stream")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = open_image(r.data)
    assert out.format in auto_out
    assert out.size == (160, 120)
    assert_image_similar(out, source, 20 if fmt == "GIF" else 8)


def test_svg_is_rendered_at_its_size(client: FlaskClient) -> None:
    r = post_image(client, SVG, "drawing.svg", outputFormat="png")
    assert r.status_code == 200
    out = open_image(r.data)
    assert out.size == (160, 120)
    left = out.convert("RGB").getpixel((40, 60))
    right = out.convert("RGB").getpixel((120, 60))
    assert left == (208, 16, 16)
    assert right == (16, 16, 208)


def test_svg_auto_keeps_transparency_as_webp(client: FlaskClient) -> None:
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
           b'<circle cx="20" cy="20" r="10" fill="green"/></svg>')
    out = open_image(post_image(client, svg, "dot.svg").data)
    assert out.format == "WEBP"
    assert out.mode == "RGBA"
    assert out.getpixel((1, 1))[3] == 0


def test_heic_convert_to_jpeg(client: FlaskClient) -> None:
    source = photo(320, 240)
    r = post_image(client, encode(source, "HEIF", quality=90), "photo.heic",
                   path="/api/convert", outputFormat="jpeg", quality=85)
    out = open_image(r.data)
    assert out.format == "JPEG"
    assert out.size == (320, 240)
    assert r.headers["Content-Disposition"] == 'attachment; filename="photo-compressed.jpg"'
    assert_image_similar(out, source, 8)


def test_jpeg_named_png_is_processed_as_jpeg(client: FlaskClient) -> None:
    source = photo(100, 80)
    r = post_image(client, encode(source, "JPEG"), "not-really.png", content_type="image/png",
                   outputFormat="jpeg")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/jpeg"
    assert_image_similar(open_image(r.data), source, 8)


def test_formats_endpoint_lists_what_is_served(client: FlaskClient) -> None:
    body = client.get("/api/formats").json
    assert body == {
        "input": ["jpeg", "jpg", "png", "webp", "avif", "svg", "heic", "heif", "tiff", "gif",
                  "bmp"],
        "output": ["jpeg", "png", "webp", "avif"],
    }


def test_health(client: FlaskClient) -> None:
    import re

    from feather_core import __version__

    body = client.get("/api/health").json
    assert body["ok"] is True
    assert body["version"] == __version__ == "1.0.0"
    assert body["env"] == "production"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])
