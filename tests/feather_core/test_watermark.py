"""The watermark step: scale, opacity, the nine positions and their margin."""

from __future__ import annotations

import pytest
from PIL import Image

from feather_core import CompressOptions, compress
from feather_core.errors import InvalidOptions
from feather_core.options import Watermark
from feather_core.steps.watermark import place
from tests.helpers import close, open_image, pixel
from tests.images import encode


def _mark(colour: tuple[int, int, int, int] = (255, 0, 0, 255)) -> bytes:
    return encode(Image.new("RGBA", (50, 50), colour), "PNG")


def _run(position: str = "BR", scale: float = 20, opacity: float = 100,
         base: tuple[int, int] = (500, 300)) -> Image.Image:
    white = encode(Image.new("RGB", base, (255, 255, 255)), "PNG")
    options = CompressOptions(output_format="png", watermark=Watermark(
        image=_mark(), scale=scale, opacity=opacity, position=position))
    return open_image(compress(white, options).data)


@pytest.mark.parametrize("position", ["TL", "TC", "TR", "ML", "MC", "MR", "BL", "BC", "BR"])
def test_positions(position: str) -> None:
    image = _run(position)
    x, y = place((500, 300), (100, 100), position)
    assert close(pixel(image, x + 50, y + 50), (255, 0, 0))
    margin = round(0.03 * 300)
    if position[1] == "L":
        assert x == margin
        assert close(pixel(image, margin - 2, y + 50), (255, 255, 255))
    if position[1] == "R":
        assert x + 100 == 500 - margin
    if position[0] == "B":
        assert y + 100 == 300 - margin


def test_scale_is_a_share_of_the_base_width() -> None:
    image = _run("TL", scale=40)
    margin = 9
    red = [x for x in range(500) if close(pixel(image, x, margin + 5), (255, 0, 0))]
    assert (min(red), max(red)) == (margin, margin + 199)


def test_opacity_blends() -> None:
    half = pixel(_run("MC", opacity=50), 250, 150)
    assert close(half, (255, 128, 128), tolerance=6)
    assert close(pixel(_run("MC", opacity=0), 250, 150), (255, 255, 255))


def test_jpeg_watermark_is_accepted_and_garbage_is_refused() -> None:
    white = encode(Image.new("RGB", (200, 200), (255, 255, 255)), "PNG")
    jpeg_mark = encode(Image.new("RGB", (20, 20), (0, 0, 255)), "JPEG", quality=95)
    options = CompressOptions(output_format="png", watermark=Watermark(
        image=jpeg_mark, scale=50, opacity=100, position="MC"))
    assert close(pixel(open_image(compress(white, options).data), 100, 100), (0, 0, 255))
    with pytest.raises(InvalidOptions) as error:
        compress(white, CompressOptions(watermark=Watermark(image=b"nope")))
    assert "watermarkFile" in error.value.details
