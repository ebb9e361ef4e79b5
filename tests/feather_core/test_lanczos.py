"""The vectorised Lanczos filter gives Pillow's picture, in every mode, at any size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from feather_core import lanczos
from tests.helpers import assert_image_similar, pixel
from tests.images import photo


def test_the_fast_filter_is_built() -> None:
    # setup.py builds it on install; without a compiler the Pillow path still works,
    # but an installation that should have it must not silently lose it.
    assert lanczos._resample is not None


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA"])
@pytest.mark.parametrize(("size", "target"), [
    ((640, 480), (320, 240)),
    ((1000, 700), (999, 699)),
    ((1200, 800), (173, 115)),     # reduced by box first, then Lanczos
    ((300, 1), (100, 1)),
    ((1, 300), (1, 7)),
    ((37, 23), (36, 5)),
])
def test_matches_pillow(mode: str, size: tuple[int, int], target: tuple[int, int]) -> None:
    image = photo(*size, mode="RGBA").convert(mode)
    ours = lanczos.lanczos_resize(image, target)
    reference = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=lanczos.REDUCING_GAP)
    assert ours.mode == mode
    assert ours.size == target
    # Compared premultiplied: where alpha is near 0, colour values carry no picture and
    # un-premultiplying magnifies rounding.
    premultiplied = {"RGBA": "RGBa", "LA": "La"}.get(mode, mode)
    difference = np.abs(np.asarray(ours.convert(premultiplied), dtype=int)
                        - np.asarray(reference.convert(premultiplied), dtype=int))
    assert difference.mean() < 1.0, difference.mean()
    assert np.percentile(difference, 99.9) <= 12


def test_transparent_pixels_do_not_bleed_their_colour() -> None:
    # Opaque white on the left, fully transparent *red* on the right: without
    # premultiplied alpha the red would tint the edge of the white.
    image = Image.new("RGBA", (200, 100), (255, 0, 0, 0))
    image.paste((255, 255, 255, 255), (0, 0, 100, 100))
    out = lanczos.lanczos_resize(image, (50, 25))
    red, green, blue, alpha = pixel(out, 24, 12)
    assert alpha > 100
    assert min(green, blue) >= red - 3


def test_fallback_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    image = photo(400, 300)
    fast = lanczos.lanczos_resize(image, (200, 150))
    monkeypatch.setattr(lanczos, "_resample", None)
    slow = lanczos.lanczos_resize(image, (200, 150))
    assert slow.size == fast.size == (200, 150)
    assert_image_similar(slow, fast, 1.0)


def test_other_modes_use_pillow() -> None:
    image = photo(100, 80).convert("P")
    out = lanczos.lanczos_resize(image, (50, 40))
    assert out.size == (50, 40)


def test_bad_buffers_are_refused() -> None:
    assert lanczos._resample is not None
    with pytest.raises(ValueError, match="does not hold rows"):
        lanczos._resample.resample_rows(b"\x00" * 10, 4, 10, 2)
    with pytest.raises(ValueError, match="does not hold rows"):
        lanczos._resample.resample_rows(b"\x00" * 10, 0, 10, 2)
