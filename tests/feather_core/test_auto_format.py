"""outputFormat=auto: the output format follows the pixels and the client's formats."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from feather_core import compress
from feather_core.auto_format import (
    GRAPHIC,
    MIXED,
    PHOTO,
    classify,
    fits,
    shown_formats,
)
from feather_core.options import CompressOptions
from tests.helpers import assert_image_similar, open_image
from tests.images import animated_gif, encode, photo
from tests.paths import RESOURCES

BROWSER = frozenset({"image/avif", "image/webp", "image/apng", "image/svg+xml"})


def screenshot(width: int = 800, height: int = 500) -> Image.Image:
    """A flat UI: panels, a bar, text-like strokes; a few dozen colours."""
    image = Image.new("RGB", (width, height), (245, 246, 248))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 48), fill=(32, 48, 96))
    for row in range(8):
        top = 70 + row * 52
        draw.rectangle((24, top, width - 24, top + 40), fill=(255, 255, 255),
                       outline=(210, 214, 220))
        for word in range(6):
            left = 40 + word * 110
            draw.rectangle((left, top + 14, left + 70 + (row * word) % 30, top + 24),
                           fill=(60 + 20 * word, 60, 70))
        draw.text((width - 200, top + 12), f"item {row}", fill=(20, 20, 20))
    return image


def test_classifier_tells_photos_from_graphics() -> None:
    assert classify(photo(640, 480, seed=1)).kind == PHOTO
    assert classify(screenshot()).kind == GRAPHIC
    mixed = screenshot()
    mixed.paste(photo(400, 300, seed=2), (100, 100))
    assert classify(mixed).kind in (MIXED, GRAPHIC)


def test_photo_becomes_webp_and_smaller() -> None:
    source = photo(640, 480, seed=3)
    data = encode(source, "PNG")
    result = compress(data, CompressOptions())
    image = open_image(result.data)
    assert (result.format.name, image.format) == ("webp", "WEBP")
    assert image.size == source.size
    assert_image_similar(source, image, max_mean_diff=8)
    assert result.output_bytes < len(data) / 4


def test_screenshot_stays_lossless() -> None:
    source = screenshot()
    data = encode(source, "PNG", compress_level=1)
    result = compress(data, CompressOptions())
    image = open_image(result.data)
    assert result.format.name in ("png", "webp")
    assert image.convert("RGB").tobytes() == source.tobytes()
    assert result.output_bytes < len(data)


def test_client_without_webp_gets_jpeg_for_photos_and_png_for_alpha() -> None:
    only_png = frozenset({"image/png"})
    result = compress(encode(photo(400, 300, seed=4), "PNG"), CompressOptions(accept=only_png))
    assert open_image(result.data).format == "JPEG"
    transparent = photo(400, 300, seed=5, mode="RGBA")
    result = compress(encode(transparent, "PNG"), CompressOptions(accept=only_png))
    image = open_image(result.data)
    assert image.format == "PNG"
    assert image.mode == "RGBA"


def test_alpha_is_kept() -> None:
    source = photo(400, 300, seed=6, mode="RGBA")
    result = compress(encode(source, "PNG"), CompressOptions())
    image = open_image(result.data)
    assert image.format == "WEBP"
    assert image.mode == "RGBA"
    assert abs(image.getpixel((0, 150))[3] - source.getpixel((0, 150))[3]) <= 8


def test_animation_is_kept_as_webp() -> None:
    result = compress(animated_gif(frames=4), CompressOptions())
    image = open_image(result.data)
    assert image.format == "WEBP"
    assert getattr(image, "n_frames", 1) == 4


def test_avif_is_not_encoded_even_when_accepted() -> None:
    result = compress(encode(photo(320, 240, seed=7), "PNG"), CompressOptions(accept=BROWSER))
    assert result.format.name == "webp"


def test_too_wide_for_webp_is_not_webp() -> None:
    assert not fits("webp", (16_384, 10))
    assert fits("webp", (16_383, 10))
    source = photo(16_500, 12, seed=8)
    result = compress(encode(source, "PNG"), CompressOptions())
    image = open_image(result.data)
    assert image.format in ("JPEG", "PNG")
    assert image.size == source.size


def test_input_is_returned_when_nothing_is_smaller() -> None:
    data = encode(photo(640, 480, seed=9), "JPEG", quality=25)
    result = compress(data, CompressOptions())
    assert result.unchanged
    assert result.data == data
    assert result.format.name == "jpeg"


def test_input_the_client_cannot_show_is_not_returned() -> None:
    data = encode(photo(320, 240, seed=10), "WEBP", quality=20)
    result = compress(data, CompressOptions(accept=frozenset({"image/png"})))
    assert open_image(result.data).format in ("JPEG", "PNG")


def test_resize_still_converts() -> None:
    data = encode(photo(800, 600, seed=11), "JPEG", quality=25)
    result = compress(data, CompressOptions(max_width=400))
    assert result.format.name == "webp"
    assert open_image(result.data).size == (400, 300)


@pytest.mark.parametrize(("accept", "expected"), [
    (None, {"webp", "jpeg", "png"}),
    (frozenset({"image/webp"}), {"webp", "jpeg", "png"}),
    (frozenset({"image/png"}), {"jpeg", "png"}),
    (BROWSER, {"avif", "webp", "jpeg", "png"}),
])
def test_shown_formats(accept: frozenset[str] | None, expected: set[str]) -> None:
    assert shown_formats(accept) == expected


def test_quality_auto_never_picks_an_output_short_of_the_floor() -> None:
    from feather_core import perceptual
    from feather_core.options import LEVELS

    if not perceptual.available():
        pytest.skip("metric extension not built")
    # Saturated flat areas and coloured text: lossy WebP is smaller than lossless here but
    # stays far under the floor at any quality (4:2:0 chroma); lossless must win.
    data = (RESOURCES / "bandbool.png").read_bytes()
    result = compress(data, CompressOptions(quality_level="good"))
    assert result.score is not None
    assert result.score >= LEVELS["good"]
    decoded = open_image(result.data).convert("RGB")
    assert perceptual.ssimulacra2(open_image(data).convert("RGB"), decoded) >= LEVELS["good"]


def _half_flat_photo(width: int, height: int) -> Image.Image:
    """A photo whose right half is one flat colour: half its pixels equal their neighbour,
    so ``auto`` cannot tell it from a screenshot by looking and tries lossless outputs."""
    image = photo(width, height, seed=9)
    image.paste((90, 140, 200), (width // 2, 0, width, height))
    return image


def test_lossless_outputs_that_cannot_win_on_a_large_picture_are_not_made_whole() -> None:
    image = _half_flat_photo(2600, 1800)
    assert classify(image).kind == "mixed"
    result = compress(encode(image, "JPEG", quality=95), CompressOptions())
    # Lossy WebP wins; PNG and lossless WebP were judged on a 1 MP sample of tiles, so
    # the only full-size encode is the WebP one.
    assert result.format.name == "webp"
    assert result.iterations == 1
    assert_image_similar(open_image(result.data).convert("RGB"), image, 4.0)


def test_a_small_picture_still_tries_every_candidate_whole() -> None:
    image = _half_flat_photo(900, 600)
    assert classify(image).kind == "mixed"
    result = compress(encode(image, "JPEG", quality=95), CompressOptions())
    assert result.iterations == 3  # lossy WebP, PNG and lossless WebP, each whole
