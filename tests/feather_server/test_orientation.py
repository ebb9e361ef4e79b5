"""EXIF orientation 1-8 is applied before crops and edits; the output carries none."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.api import post_image
from tests.helpers import close, open_image, pixel
from tests.images import marked, with_orientation

RED, GREEN, BLUE, WHITE = (220, 20, 20), (20, 200, 20), (20, 20, 220), (250, 250, 250)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_every_orientation_comes_out_upright(client: FlaskClient, orientation: int,
                                             fmt: str) -> None:
    data = with_orientation(marked(300, 200), orientation)
    r = post_image(client, data, outputFormat=fmt, stripMetadata="false")
    assert r.status_code == 200
    out = open_image(r.data)
    assert out.size == (300, 200)
    assert close(pixel(out, 20, 20)[:3], RED, 30)
    assert close(pixel(out, 280, 20)[:3], GREEN, 30)
    assert close(pixel(out, 20, 180)[:3], BLUE, 30)
    assert out.getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_crop_is_on_the_upright_image(client: FlaskClient, orientation: int) -> None:
    data = with_orientation(marked(300, 200), orientation)
    r = post_image(client, data, outputFormat="png", cropX=150, cropY=100, cropWidth=150,
                   cropHeight=100)
    out = open_image(r.data)
    assert out.size == (150, 100)
    assert close(pixel(out, 75, 50)[:3], WHITE, 30)


@pytest.mark.parametrize("orientation", [6, 8])
def test_resize_with_draft_decoding_uses_upright_dimensions(client: FlaskClient,
                                                             orientation: int) -> None:
    data = with_orientation(marked(1600, 1200), orientation)
    r = post_image(client, data, maxWidth=400)
    out = open_image(r.data)
    assert out.size == (400, 300)
    assert close(pixel(out, 10, 10)[:3], RED, 30)
