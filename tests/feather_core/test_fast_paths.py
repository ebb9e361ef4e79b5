"""The fast paths (JPEG draft decoding, reduce-then-Lanczos) give what the slow path gives."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from feather_core import compress
from feather_core.decode import decode, open_source
from feather_core.options import CompressOptions, Crop, Edits, Limits
from feather_core.steps.resize import fit_within, resize_frame
from tests.helpers import ssim
from tests.images import encode, photo, with_orientation


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _slow_path(data: bytes, size: tuple[int, int]) -> Image.Image:
    """Full decode, upright, one plain Lanczos: the reference the fast path must match."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return image.resize(size, Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    # 2401 x 1501: odd sizes, so a reduced DCT scale rounds up and must not leak into the result.
    return encode(photo(2401, 1501, seed=11), "JPEG", quality=90)


@pytest.mark.parametrize(("fmt", "max_width", "max_height", "expected"), [
    ("webp", 1600, None, (1600, 1000)),     # no reduced scale fits: full decode
    ("jpeg", 1100, None, (1100, 688)),      # 1/2 DCT scale
    ("webp", 550, None, (550, 344)),        # 1/4 DCT scale
    ("jpeg", None, 300, (480, 300)),        # 1/4 via the height
    ("jpeg", 290, 290, (290, 181)),         # 1/8 DCT scale
    ("avif", 400, None, (400, 250)),
])
def test_draft_decoding_keeps_dimensions_and_pixels(
    big_jpeg: bytes, fmt: str, max_width: int | None, max_height: int | None,
    expected: tuple[int, int],
) -> None:
    assert fit_within((2401, 1501), max_width, max_height) == expected
    result = compress(big_jpeg, CompressOptions(output_format=fmt, max_width=max_width,
                                                max_height=max_height))
    out = _open(result.data)
    assert out.format == fmt.upper()
    assert out.size == expected == (result.width, result.height)
    assert result.resized
    assert ssim(out, _slow_path(big_jpeg, expected)) > 0.98


def test_draft_really_decodes_smaller(big_jpeg: bytes) -> None:
    source = open_source(big_jpeg, Limits())
    picture = decode(source, keep_animation=False, keep_metadata=False, shrink_to=(550, 344))
    assert picture.size == (601, 376)  # 1/4 scale, rounded up, still at least the target


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_draft_with_exif_orientation(orientation: int) -> None:
    upright = photo(1200, 800, seed=orientation)
    data = with_orientation(upright, orientation)
    result = compress(data, CompressOptions(output_format="jpeg", max_width=250))
    out = _open(result.data)
    assert out.size == (250, 167)
    assert ssim(out, upright.resize((250, 167), Image.Resampling.LANCZOS)) > 0.97


def test_portrait_orientation_uses_the_upright_box() -> None:
    upright = photo(800, 1200, seed=2)
    data = with_orientation(upright, 6)
    result = compress(data, CompressOptions(output_format="webp", max_width=200, max_height=250))
    assert _open(result.data).size == (167, 250)


def test_edits_that_need_full_resolution_still_match() -> None:
    data = encode(photo(1200, 800, seed=4), "JPEG", quality=90)
    crop = Edits(crop=Crop(100, 100, 600, 400))
    result = compress(data, CompressOptions(output_format="jpeg", max_width=150, edits=crop))
    assert _open(result.data).size == (150, 100)


def test_reducing_gap_resize_matches_plain_lanczos() -> None:
    image = photo(1200, 900, seed=6)
    fast = resize_frame(image, (240, 180))
    plain = image.resize((240, 180), Image.Resampling.LANCZOS)
    assert fast.size == (240, 180)
    assert ssim(fast, plain) > 0.995


def test_alpha_is_resampled_premultiplied() -> None:
    image = photo(1000, 800, seed=8, mode="RGBA")
    out = resize_frame(image, (250, 200))
    assert out.mode == "RGBA"
    assert out.size == (250, 200)
    assert ssim(out.convert("RGB"), image.convert("RGB").resize((250, 200))) > 0.98


def test_png_input_is_not_drafted_but_resized() -> None:
    data = encode(photo(900, 600, seed=10), "PNG")
    result = compress(data, CompressOptions(output_format="webp", max_width=300))
    assert _open(result.data).size == (300, 200)


@pytest.mark.parametrize("orientation", [1, 6])
def test_reduced_scale_rounding_does_not_change_the_size(orientation: int) -> None:
    # 1201 x 801 decodes at 1/4 as 301 x 201, whose own fit to 299 wide would be 299 x 200;
    # the full-size rule gives 299 x 199, and so must the fast path.
    data = with_orientation(photo(1201, 801, seed=12), orientation)
    source = open_source(data, Limits())
    picture = decode(source, keep_animation=False, keep_metadata=False, shrink_to=(299, 199))
    assert picture.first.size in ((301, 201), (201, 301))
    result = compress(data, CompressOptions(output_format="jpeg", max_width=299))
    assert _open(result.data).size == (299, 199) == (result.width, result.height)
