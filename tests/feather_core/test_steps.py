"""Each pipeline step on its own, and the order of the list."""

from __future__ import annotations

import pytest
from PIL import Image

from feather_core import pipeline
from feather_core.errors import InvalidOptions
from feather_core.formats import output_format
from feather_core.options import CompressOptions, Crop, Edits, Watermark
from feather_core.picture import Picture
from feather_core.steps.colour import adjust_colour
from feather_core.steps.crop import crop
from feather_core.steps.filters import blur_sharpen
from feather_core.steps.flip import flip_flop
from feather_core.steps.job import Job
from feather_core.steps.orientation import apply_orientation
from feather_core.steps.resize import fit_within, resize
from feather_core.steps.rotate import rotate
from feather_core.steps.watermark import place, watermark
from tests.helpers import close, pixel
from tests.images import encode, marked


def job(fmt: str = "png", **options: object) -> Job:
    edits = options.pop("edits", Edits())
    return Job(CompressOptions(output_format=fmt, edits=edits, **options),  # type: ignore[arg-type]
               output_format(fmt))


def picture(image: Image.Image | None = None, **fields: object) -> Picture:
    return Picture(frames=(image or marked(300, 200),), **fields)  # type: ignore[arg-type]


def test_the_documented_order() -> None:
    assert [name for name, _ in pipeline.STEPS] == [
        "orientation", "crop", "rotate", "flip", "colour", "filters", "resize", "watermark",
    ]


def test_orientation_step() -> None:
    stored = marked(300, 200).transpose(Image.Transpose.ROTATE_90)
    out = apply_orientation(picture(stored, orientation=6), job())
    assert out.orientation == 1
    assert out.size == (300, 200)
    assert close(pixel(out.first, 10, 10)[:3], (220, 20, 20))


def test_crop_step() -> None:
    out = crop(picture(), job(edits=Edits(crop=Crop(150, 100, 100, 50))))
    assert out.size == (100, 50)
    assert close(pixel(out.first, 5, 5)[:3], (250, 250, 250))


def test_crop_options_validate() -> None:
    with pytest.raises(InvalidOptions) as caught:
        Crop(-1, 0, 0, 5)
    assert set(caught.value.details) == {"cropX", "cropWidth"}


def test_rotate_step_is_clockwise() -> None:
    out = rotate(picture(), job(edits=Edits(rotate=90)))
    assert out.size == (200, 300)
    assert close(pixel(out.first, 10, 10)[:3], (20, 20, 220))


def test_flip_flop_step() -> None:
    out = flip_flop(picture(), job(edits=Edits(flip=True, flop=True)))
    assert close(pixel(out.first, 10, 10)[:3], (250, 250, 250))


def test_colour_step_keeps_alpha() -> None:
    image = marked(100, 100).convert("RGBA")
    image.putalpha(128)
    out = adjust_colour(picture(image), job(edits=Edits(brightness=0.5, grayscale=True)))
    assert out.first.mode == "LA"
    assert pixel(out.first, 10, 10)[3] == 128


def test_filters_step() -> None:
    out = blur_sharpen(picture(), job(edits=Edits(blur=3)))
    # The boundary between red and green is softened.
    assert not close(pixel(out.first, 150, 50)[:3], (220, 20, 20), 5)


@pytest.mark.parametrize(("size", "box", "expected"), [
    ((4000, 3000), (1600, None), (1600, 1200)),
    ((3000, 4000), (1600, 1600), (1200, 1600)),
    ((800, 600), (1600, None), (800, 600)),
    ((4001, 2999), (1600, None), (1600, 1199)),
    ((10, 10000), (None, 100), (1, 100)),
])
def test_fit_within(size: tuple[int, int], box: tuple[int | None, int | None],
                    expected: tuple[int, int]) -> None:
    assert fit_within(size, *box) == expected


def test_resize_uses_the_nominal_size_of_a_reduced_decode() -> None:
    # A 4001-wide JPEG decoded at 1/2 scale is 2001 wide; the result must be what a
    # full decode would give.
    half = marked(2001, 1500)
    out = resize(picture(half, nominal_size=(4001, 2999)), job(max_width=1600))
    assert out.size == (1600, 1199)
    assert out.nominal_size is None


@pytest.mark.parametrize(("position", "corner"), [
    ("TL", (0, 0)), ("BR", (1, 1)), ("MC", (0.5, 0.5)), ("TR", (1, 0)), ("BC", (0.5, 1)),
])
def test_watermark_positions(position: str, corner: tuple[float, float]) -> None:
    x, y = place((1000, 800), (200, 100), position)
    margin = round(0.03 * 800)
    expected_x = {0: margin, 0.5: 400, 1: 1000 - 200 - margin}[corner[0]]
    expected_y = {0: margin, 0.5: 350, 1: 800 - 100 - margin}[corner[1]]
    assert (x, y) == (expected_x, expected_y)


def test_watermark_step_scales_and_blends() -> None:
    mark = Image.new("RGBA", (50, 25), (0, 0, 0, 255))
    options = Watermark(image=encode(mark, "PNG"), scale=50, opacity=50, position="TL")
    base = Image.new("RGB", (400, 300), (255, 255, 255))
    out = watermark(picture(base), job(watermark=options))
    margin = round(0.03 * 300)
    inside = pixel(out.first, margin + 10, margin + 10)
    assert close(inside[:3], (128, 128, 128), 4)  # black at 50 % over white
    assert close(pixel(out.first, margin + 190, margin + 90)[:3], (128, 128, 128), 4)
    assert close(pixel(out.first, margin + 210, margin + 10)[:3], (255, 255, 255), 2)


def test_watermark_options_validate() -> None:
    with pytest.raises(InvalidOptions) as caught:
        Watermark(image=b"", scale=60, opacity=101, position="XX")
    assert set(caught.value.details) == {"watermarkScale", "watermarkOpacity",
                                         "watermarkPosition"}


def test_huge_jpegs_are_written_without_whole_image_buffers() -> None:
    from feather_core import CompressOptions, compress
    from tests.helpers import open_image

    huge = encode(Image.new("RGB", (6000, 4400), (90, 140, 200)), "JPEG", quality=60)
    result = compress(huge, CompressOptions(output_format="jpeg", progressive=True, quality=90))
    out = open_image(result.data)
    assert out.size == (6000, 4400)
    assert not out.info.get("progressive")  # buffered modes are off above 25 MP
    small = compress(encode(marked(600, 400), "PNG"),
                     CompressOptions(output_format="jpeg", progressive=True))
    assert open_image(small.data).info.get("progressive")
