"""Compressing never makes a file bigger when neither format nor size was asked to change."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from PIL import Image

from feather_core.metadata import png_crc_ok
from tests.api import post_image
from tests.helpers import open_image
from tests.images import encode, photo


@pytest.fixture
def tight_jpeg() -> bytes:
    # Already at low quality: re-encoding at 80 would only add bytes.
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    return encode(photo(400, 300), "JPEG", quality=30, exif=exif.tobytes())


def test_input_returned_when_reencoding_would_grow(client: FlaskClient, tight_jpeg: bytes) -> None:
    r = post_image(client, tight_jpeg, quality=95)
    assert r.status_code == 200
    assert len(r.data) <= len(tight_jpeg)
    assert r.headers["X-Output-Unchanged"] == "true"
    assert r.headers["X-Iterations"] == "0"
    assert float(r.headers["X-Compression-Ratio"]) >= 1.0
    out = open_image(r.data)
    assert out.size == (400, 300)
    assert not out.getexif()  # metadata stripped as asked (by default)


def test_metadata_kept_when_asked(client: FlaskClient, tight_jpeg: bytes) -> None:
    r = post_image(client, tight_jpeg, quality=95, stripMetadata="false")
    assert r.data == tight_jpeg
    assert open_image(r.data).getexif()[0x010F] == "CameraMaker"


def test_png_that_is_already_tight(client: FlaskClient) -> None:
    flat = Image.new("RGB", (300, 300), (10, 120, 200))
    data = encode(flat, "PNG", optimize=True)
    r = post_image(client, data, "flat.png")
    assert len(r.data) <= len(data)
    out = open_image(r.data)
    assert out.size == (300, 300)
    assert out.convert("RGB").getcolors() == [(90_000, (10, 120, 200))]
    if out.format == "PNG":  # auto may find lossless WebP smaller
        assert png_crc_ok(r.data)


def test_a_format_change_is_honoured_even_if_bigger(client: FlaskClient) -> None:
    data = encode(photo(200, 150), "JPEG", quality=20)
    r = post_image(client, data, outputFormat="png")
    assert open_image(r.data).format == "PNG"
    assert r.headers["X-Output-Unchanged"] == "false"


def test_edits_are_never_skipped(client: FlaskClient, tight_jpeg: bytes) -> None:
    r = post_image(client, tight_jpeg, quality=95, flop="true")
    assert r.headers["X-Output-Unchanged"] == "false"


def test_target_already_met_is_not_degraded(client: FlaskClient) -> None:
    data = encode(photo(300, 200), "JPEG", quality=90)
    r = post_image(client, data, targetMB=str(len(data) * 2 / 1_000_000))
    assert r.headers["X-Target-Met"] == "true"
    assert r.headers["X-Output-Unchanged"] == "true"
    assert open_image(r.data).size == (300, 200)
    assert len(r.data) <= len(data)


def test_avif_without_metadata_is_returned_as_is(client: FlaskClient) -> None:
    data = encode(photo(300, 200), "AVIF", quality=30)
    r = post_image(client, data, "small.avif", quality=95)
    assert r.data == data
    assert r.headers["X-Output-Unchanged"] == "true"
