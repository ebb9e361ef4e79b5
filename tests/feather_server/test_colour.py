"""Colours survive: CMYK, ICC profiles, alpha, 16-bit, grayscale and palette inputs."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageCms

from tests.api import post_image
from tests.helpers import assert_image_similar, close, open_image, pixel
from tests.images import encode, marked, photo


def test_cmyk_jpeg_comes_out_with_the_right_colours(client: FlaskClient) -> None:
    source = marked(300, 200)
    cmyk = encode(source.convert("CMYK"), "JPEG", quality=95)
    for fmt in ("jpeg", "webp", "png", "avif"):
        r = post_image(client, cmyk, "print.jpg", outputFormat=fmt)
        assert r.status_code == 200
        out = open_image(r.data)
        assert out.mode in ("RGB", "RGBA", "P")  # PNG of few colours is a palette PNG
        assert_image_similar(out, source, 10)


def test_cmyk_jpeg_with_auto_format_comes_out_in_rgb(client: FlaskClient) -> None:
    cmyk = encode(photo(200, 150).convert("CMYK"), "JPEG", quality=95)
    out = open_image(post_image(client, cmyk, "print.jpg").data)
    assert out.format == "WEBP"
    assert out.mode == "RGB"


def test_icc_profile_is_kept_when_metadata_is_stripped(client: FlaskClient) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(photo(200, 150), "JPEG", icc_profile=profile)
    for fmt in ("jpeg", "webp", "png", "avif"):
        out = open_image(post_image(client, data, outputFormat=fmt, stripMetadata="true").data)
        assert out.info.get("icc_profile") == profile, fmt


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_alpha_survives_where_the_output_has_it(client: FlaskClient, fmt: str) -> None:
    source = photo(200, 150, mode="RGBA")
    out = open_image(post_image(client, encode(source, "PNG"), "a.png", outputFormat=fmt).data)
    assert out.mode == "RGBA"
    assert pixel(out, 2, 2)[3] < 20
    assert pixel(out, 197, 147)[3] > 235


def test_jpeg_output_of_a_transparent_image_is_flattened_on_white(client: FlaskClient) -> None:
    clear = Image.new("RGBA", (100, 80), (255, 0, 0, 0))
    clear.paste((0, 0, 255, 255), (50, 0, 100, 80))
    out = open_image(post_image(client, encode(clear, "PNG"), "a.png", outputFormat="jpeg").data)
    assert out.mode == "RGB"
    assert close(pixel(out, 10, 40)[:3], (255, 255, 255))
    assert close(pixel(out, 90, 40)[:3], (0, 0, 255), 20)


def test_sixteen_bit_png(client: FlaskClient) -> None:
    gradient = Image.linear_gradient("L").resize((256, 64))
    wide = Image.new("I;16", gradient.size)
    wide.frombytes(bytes(b for v in gradient.tobytes() for b in (v * 257).to_bytes(2, "little")),
                   "raw", "I;16")
    data = encode(wide, "PNG")
    assert open_image(data).mode.startswith("I")
    out = open_image(post_image(client, data, "deep.png", outputFormat="png").data)
    assert_image_similar(out.convert("L"), gradient, 3)


def test_sixteen_bit_rgb_png(client: FlaskClient) -> None:
    import numpy as np

    source = photo(128, 96)
    deep = (np.asarray(source, dtype=np.uint16) * 257).astype(">u2")
    import struct
    import zlib

    raw = b"".join(b"\x00" + row.tobytes() for row in deep)
    ihdr = struct.pack(">IIBBBBB", 128, 96, 16, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + \
        chunk(b"IEND", b"")
    out = open_image(post_image(client, data, "deep-rgb.png", outputFormat="webp").data)
    assert_image_similar(out, source, 8)


def test_palette_with_transparency(client: FlaskClient) -> None:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([255, 255, 255, 200, 0, 0] + [0] * 762)
    image.paste(1, (32, 0, 64, 64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    out = open_image(post_image(client, buffer.getvalue(), "p.png", outputFormat="webp").data)
    assert pixel(out, 5, 5)[3] == 0
    assert close(pixel(out, 50, 5), (200, 0, 0, 255), 20)


def test_grayscale_and_bilevel_inputs(client: FlaskClient) -> None:
    gray = photo(120, 90).convert("L")
    out = open_image(post_image(client, encode(gray, "PNG"), "g.png", outputFormat="jpeg").data)
    assert_image_similar(out.convert("L"), gray, 6)
    bilevel = marked(120, 90).convert("1")
    out = open_image(post_image(client, encode(bilevel, "TIFF"), "b.tiff").data)
    assert out.size == (120, 90)


def test_cmyk_is_converted_through_its_own_profile(client: FlaskClient) -> None:
    from tests.images import odd_cmyk_profile

    image = Image.new("CMYK", (200, 100), (0, 0, 0, 0))
    image.paste((255, 0, 0, 0), (0, 0, 100, 100))  # pure cyan ink on the left
    data = encode(image, "JPEG", quality=95, icc_profile=odd_cmyk_profile())
    assert open_image(data).mode == "CMYK"
    for fmt in ("jpeg", "png", "webp"):
        out = open_image(post_image(client, data, "print.jpg", outputFormat=fmt).data)
        red, green, blue = out.convert("RGB").getpixel((50, 50))
        # The profile says cyan ink prints pinkish red; a plain formula would give cyan.
        assert (red > 200, green < 120, blue < 190) == (True, True, True), (fmt, red, green,
                                                                             blue)
        assert close(pixel(out, 150, 50)[:3], (255, 255, 255))
        assert not out.info.get("icc_profile")  # the CMYK profile does not travel with RGB


def test_grayscale_output_carries_no_rgb_profile(client: FlaskClient) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(photo(120, 90), "JPEG", icc_profile=profile)
    for fmt in ("jpeg", "png", "webp", "avif"):
        out = open_image(post_image(client, data, outputFormat=fmt, grayscale="true").data)
        assert not out.info.get("icc_profile"), fmt
