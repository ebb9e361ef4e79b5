"""The target-size search: under the cap, filling the band, at the highest quality that fits."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from feather_core import compress
from feather_core.deadline import Deadline
from feather_core.encode import ENCODERS, EncodeSettings
from feather_core.options import CompressOptions
from feather_core.picture import Picture
from feather_core.target_size import GOOD_ENOUGH, QUALITY_CEILING, QUALITY_FLOOR, fit_to_size
from tests.images import encode, photo

SETTINGS = EncodeSettings(effort=4, preview=False, progressive=False, keep_metadata=False)


class Counting:
    """An encoder that remembers every (size, quality, bytes) it produced."""

    def __init__(self, fmt: str) -> None:
        self.encoder = ENCODERS[fmt]
        self.calls: list[tuple[tuple[int, int], int, int]] = []

    def __call__(self, picture: Picture, quality: int) -> bytes:
        data = self.encoder(picture, quality, SETTINGS)
        self.calls.append((picture.size, quality, len(data)))
        return data


def _jpeg_size(picture: Picture, quality: int) -> int:
    return len(ENCODERS["jpeg"](picture, quality, SETTINGS))


@pytest.fixture(scope="module")
def picture() -> Picture:
    return Picture((photo(900, 600, seed=3),))


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("share", [0.35, 0.6, 0.9, 1.6])
def test_jpeg_fits_in_band_at_the_highest_quality(picture: Picture, share: float) -> None:
    # Caps below and above the q80 size: the search goes down or up from the asked quality.
    at_80 = _jpeg_size(picture, 80)
    target = int(at_80 * share)
    encoder = Counting("jpeg")
    fit = fit_to_size(picture, encoder, target, 80, True, Deadline(None))

    assert fit.met
    assert len(fit.data) <= target
    assert fit.encodes == len(encoder.calls)
    image = _decoded(fit.data)
    assert image.format == "JPEG"
    assert image.size == fit.picture.size
    if fit.picture.size == picture.size:
        # At full size: either the band is reached, or one step more quality would not fit
        # (or the ceiling is reached): nothing better was left on the table.
        full = len(fit.data) >= GOOD_ENOUGH * target
        at_ceiling = fit.quality >= QUALITY_CEILING
        assert full or at_ceiling or _jpeg_size(picture, fit.quality + 1) > target
        assert fit.quality >= QUALITY_FLOOR


def test_search_needs_few_encodes(picture: Picture) -> None:
    at_80 = _jpeg_size(picture, 80)
    counts = []
    for share in (0.4, 0.5, 0.65, 0.8, 1.2, 1.4, 1.7):
        encoder = Counting("jpeg")
        fit = fit_to_size(picture, encoder, int(at_80 * share), 80, True, Deadline(None))
        assert fit.met
        counts.append(fit.encodes)
    counts.sort()
    assert counts[len(counts) // 2] <= 4, counts


def test_scales_down_when_the_floor_does_not_fit(picture: Picture) -> None:
    at_floor = _jpeg_size(picture, QUALITY_FLOOR)
    target = at_floor // 4
    fit = fit_to_size(picture, Counting("jpeg"), target, 80, True, Deadline(None))

    assert fit.met
    assert len(fit.data) <= target
    width, height = fit.picture.size
    assert width < 900
    assert height < 600
    assert abs(width / height - 1.5) < 0.02
    assert _decoded(fit.data).size == (width, height)
    assert fit.quality >= QUALITY_FLOOR


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_other_lossy_formats_fit(fmt: str) -> None:
    small = Picture((photo(240, 160, seed=5),))
    encoder = Counting(fmt)
    at_80 = len(ENCODERS[fmt](small, 80, SETTINGS))
    target = int(at_80 * 0.6)
    fit = fit_to_size(small, encoder, target, 80, True, Deadline(None))

    assert fit.met
    assert len(fit.data) <= target
    assert _decoded(fit.data).format == fmt.upper()
    assert fit.quality < 80


def test_lossless_png_only_scales() -> None:
    small = Picture((photo(300, 200, seed=1),))
    at_full = len(ENCODERS["png"](small, 80, SETTINGS))
    encoder = Counting("png")
    fit = fit_to_size(small, encoder, at_full // 3, 80, False, Deadline(None))

    assert fit.met
    assert len(fit.data) <= at_full // 3
    assert fit.picture.size[0] < 300
    assert _decoded(fit.data).format == "PNG"
    assert {quality for _, quality, _ in encoder.calls} == {80}


def test_an_expired_deadline_returns_the_first_try(picture: Picture) -> None:
    deadline = Deadline(0.0)
    fit = fit_to_size(picture, Counting("jpeg"), 1000, 80, True, deadline)
    assert fit.encodes == 1
    assert not fit.met


def test_compress_reports_the_search() -> None:
    data = encode(photo(1600, 1200, seed=9), "JPEG", quality=95)
    target = len(data) // 3
    result = compress(data, CompressOptions(output_format="jpeg", target_bytes=target))

    assert result.target_met is True
    assert result.output_bytes <= target
    assert 1 <= result.iterations <= 6
    image = _decoded(result.data)
    assert image.format == "JPEG"
    assert image.size == (result.width, result.height)


@pytest.fixture(scope="module")
def large() -> Picture:
    # 4.6 MP: large enough to be estimated on a sample before any full-size encode.
    return Picture((photo(2640, 1760, seed=11),))


def test_a_sample_predicts_the_full_size_bytes(large: Picture) -> None:
    from feather_core.target_size import tile_mosaic

    tiles = Picture((tile_mosaic(large.first),))
    assert tiles.size == (1024, 1024)
    area = large.size[0] * large.size[1] / (1024 * 1024)
    for fmt in ("webp", "jpeg"):
        full = len(ENCODERS[fmt](large, 70, SETTINGS))
        predicted = len(ENCODERS[fmt](tiles, 70, SETTINGS)) * area
        assert 0.85 < predicted / full < 1.15, (fmt, predicted / full)


@pytest.mark.parametrize("share", [0.5, 0.8, 1.3])
def test_large_pictures_fit_in_few_full_size_encodes(large: Picture, share: float) -> None:
    at_80 = len(ENCODERS["webp"](large, 80, SETTINGS))
    target = int(at_80 * share)
    encoder = Counting("webp")
    fit = fit_to_size(large, encoder, target, 80, True, Deadline(None))

    assert fit.met
    assert len(fit.data) <= target
    full_size = [call for call in encoder.calls if call[0] == large.size]
    sampled = [call for call in encoder.calls if call[0] == (1024, 1024)]
    assert len(sampled) == fit.estimate_encodes >= 1
    assert 1 <= len(full_size) <= 2, encoder.calls
    assert len(fit.data) >= GOOD_ENOUGH * target or fit.quality >= QUALITY_CEILING
    assert _decoded(fit.data).size == large.size


def test_large_pictures_scale_straight_away_when_the_sample_says_so(large: Picture) -> None:
    at_floor = len(ENCODERS["webp"](large, QUALITY_FLOOR, SETTINGS))
    encoder = Counting("webp")
    fit = fit_to_size(large, encoder, at_floor // 3, 80, True, Deadline(None))

    assert fit.met
    assert fit.picture.size[0] < large.size[0]
    assert not [call for call in encoder.calls if call[0] == large.size]  # never tried


def test_metadata_is_not_multiplied_with_the_area(large: Picture) -> None:
    from dataclasses import replace

    tagged = replace(large, xmp=b"<x:xmpmeta>" + b" " * 60_000 + b"</x:xmpmeta>")
    keep = EncodeSettings(effort=4, preview=False, progressive=False, keep_metadata=True)
    full_size: list[int] = []

    def encoder(picture: Picture, quality: int) -> bytes:
        data = ENCODERS["webp"](picture, quality, keep)
        if picture.size == large.size:
            full_size.append(len(data))
        return data

    target = int(len(encoder(tagged, 60)) * 1.1)
    full_size.clear()
    fit = fit_to_size(tagged, encoder, target, 80, True, Deadline(None))
    assert fit.met
    assert fit.picture.size == large.size
    # The 60 kB of XMP is counted once: the first full-size encode lands near the cap.
    assert 0.75 <= full_size[0] / target <= 1.1, full_size
