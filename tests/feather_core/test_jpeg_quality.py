"""Reading a JPEG's quality and likely size from its header, and the search using it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from feather_core import CompressOptions, compress
from feather_core.jpeg_quality import estimate_quality, size_anchor
from tests.helpers import open_image
from tests.images import encode, photo


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 97])
def test_quality_is_read_from_the_tables(quality: int) -> None:
    image = Image.open(io.BytesIO(encode(photo(64, 64), "JPEG", quality=quality)))
    assert abs((estimate_quality(image) or 0) - quality) <= 1


@pytest.mark.parametrize(("subsampling", "factor"), [("4:4:4", 0.78), ("4:2:2", 0.9),
                                                     ("4:2:0", 1.0)])
def test_anchor_accounts_for_chroma_subsampling(subsampling: str, factor: float) -> None:
    data = encode(photo(64, 64), "JPEG", quality=85, subsampling=subsampling)
    anchor = size_anchor(Image.open(io.BytesIO(data)), len(data))
    assert anchor == (85, pytest.approx(len(data) * factor))


def test_not_a_jpeg_gives_no_estimate() -> None:
    assert estimate_quality(Image.open(io.BytesIO(encode(photo(16, 16), "PNG")))) is None


@pytest.mark.parametrize(("source_quality", "cap"), [(95, 150_000), (92, 40_000), (60, 90_000)])
def test_search_from_the_header_meets_the_cap(source_quality: int, cap: int) -> None:
    data = encode(photo(1600, 1200, seed=5), "JPEG", quality=source_quality)
    result = compress(data, CompressOptions(output_format="jpeg", target_bytes=cap))
    assert result.target_met
    assert len(result.data) <= cap
    out = open_image(result.data)
    assert out.format == "JPEG"
    assert 0.85 * cap <= len(result.data) or result.unchanged or result.quality == 95
