"""quality=auto: the lowest quality whose output reaches the level's SSIMULACRA2 floor."""

from __future__ import annotations

import pytest

from feather_core import compress, perceptual, visual_quality
from feather_core.deadline import Deadline
from feather_core.errors import InvalidOptions
from feather_core.options import LEVELS, CompressOptions, quality_from_text
from feather_core.picture import Picture
from feather_core.visual_quality import Try, search
from tests.helpers import open_image
from tests.images import encode, photo

needs_metric = pytest.mark.skipif(not perceptual.available(), reason="metric extension not built")


@pytest.fixture(scope="module")
def source() -> bytes:
    return encode(photo(640, 480, seed=21), "PNG")


def measured(source: bytes, data: bytes) -> float:
    return perceptual.ssimulacra2(open_image(source).convert("RGB"),
                                  open_image(data).convert("RGB"))


@needs_metric
@pytest.mark.parametrize("fmt", ["webp", "jpeg"])
def test_output_reaches_the_floor_and_reports_its_score(source: bytes, fmt: str) -> None:
    result = compress(source, CompressOptions(output_format=fmt, quality_level="good"))
    assert open_image(result.data).format == fmt.upper()
    score = measured(source, result.data)
    assert score >= LEVELS["good"]
    assert result.score == pytest.approx(score, abs=1e-6)
    assert result.quality is not None
    assert 1 <= result.quality <= 100


@needs_metric
def test_one_step_lower_would_fall_below_or_the_search_stopped_close(source: bytes) -> None:
    result = compress(source, CompressOptions(output_format="webp", quality_level="good"))
    assert result.quality is not None
    assert result.score is not None
    lower = compress(source, CompressOptions(output_format="webp",
                                             quality=result.quality - 1))
    # Either the next quality down misses the floor, or the chosen one was already close.
    assert measured(source, lower.data) < LEVELS["good"] or result.score < LEVELS["good"] + 2.5


@needs_metric
def test_levels_order_bytes_and_scores(source: bytes) -> None:
    results = {level: compress(source, CompressOptions(output_format="webp",
                                                       quality_level=level))
               for level in ("eco", "good", "high")}
    for level, result in results.items():
        assert measured(source, result.data) >= LEVELS[level]
    sizes = [results[level].output_bytes for level in ("eco", "good", "high")]
    assert sizes == sorted(sizes)
    assert sizes[0] < sizes[-1]


@needs_metric
def test_auto_format_and_auto_quality_together(source: bytes) -> None:
    result = compress(source, CompressOptions(quality_level="eco"))
    assert result.format.name == "webp"
    assert measured(source, result.data) >= LEVELS["eco"]


@needs_metric
def test_byte_cap_wins(source: bytes) -> None:
    cap = 6_000
    result = compress(source, CompressOptions(output_format="webp", quality_level="high",
                                              target_bytes=cap))
    assert result.output_bytes <= cap
    assert result.target_met
    assert result.score is not None
    assert result.score < LEVELS["high"]
    image = open_image(result.data)
    assert result.score == pytest.approx(
        perceptual.ssimulacra2(open_image(source).convert("RGB").resize(image.size),
                               image.convert("RGB")), abs=8)


@needs_metric
def test_a_large_picture_reports_the_score_of_its_own_bytes() -> None:
    data = encode(photo(1800, 1200, seed=22), "JPEG", quality=95)
    result = compress(data, CompressOptions(output_format="webp", quality_level="good"))
    score = measured(data, result.data)
    assert result.score == pytest.approx(score, abs=2e-3)
    assert score >= LEVELS["good"]


@pytest.fixture(scope="module")
def large() -> Picture:
    return Picture((photo(1800, 1200, seed=22),))


def worse_when_whole(picture: Picture, quality: int) -> bytes:
    """A codec whose whole-picture output is worse than its crops promise."""
    whole = picture.size[0] > visual_quality.CROP
    return encode(picture.first, "WEBP", quality=max(1, quality - 8) if whole else quality)


@needs_metric
def test_a_large_picture_is_judged_whole_when_its_crops_mislead(large: Picture) -> None:
    found = visual_quality.encode_to_level(large, worse_when_whole, "webp", "good",
                                           Deadline(None))
    whole = [t for t in found.tries if open_image(t.data).size == large.size]
    # The quality the crops found misses the floor on the whole picture; the search
    # went on there, and the score reported is the output's own.
    assert whole[0].score < LEVELS["good"]
    assert found.best.score >= LEVELS["good"]
    assert found.best.score == pytest.approx(
        perceptual.ssimulacra2(large.first, open_image(found.best.data)), abs=2e-3)


class _AlmostOver(Deadline):
    """A deadline that always has 0.26 s left: enough for the crops, not for a whole score."""

    def remaining(self) -> float | None:
        return 0.26

    def expired(self, margin: float = 0.0) -> bool:
        return margin >= 0.26


@needs_metric
def test_without_time_to_score_a_large_picture_its_crops_estimate_is_reported(
        large: Picture) -> None:
    found = visual_quality.encode_to_level(large, worse_when_whole, "webp", "good",
                                           _AlmostOver(None))
    whole = [t for t in found.tries if open_image(t.data).size == large.size]
    assert len(whole) == 1
    crops = [t for t in found.tries if t not in whole and t.quality == found.best.quality]
    assert found.best.score == pytest.approx(crops[-1].score - visual_quality.SAMPLE_MARGIN)


def test_lossless_output_scores_100_when_asked() -> None:
    result = compress(encode(photo(200, 150, seed=23), "PNG"),
                      CompressOptions(output_format="png", quality_level="good"))
    assert result.quality is None
    if perceptual.available():
        assert result.score == pytest.approx(100.0)


def test_fixed_quality_reports_no_score(source: bytes) -> None:
    assert compress(source, CompressOptions(output_format="webp")).score is None


@pytest.mark.parametrize(("text", "expected"), [
    ("auto", (80, "good")), ("AUTO:High", (80, "high")), ("auto:eco", (80, "eco")),
    ("auto:good", (80, "good")), (" 55 ", (55, None)), ("100", (100, None)),
])
def test_quality_from_text(text: str, expected: tuple[int, str | None]) -> None:
    assert quality_from_text(text) == expected


@pytest.mark.parametrize("text", ["auto:best", "0", "101", "", "eighty", "auto:"])
def test_quality_from_text_refuses(text: str) -> None:
    with pytest.raises(InvalidOptions) as caught:
        quality_from_text(text)
    assert "quality" in caught.value.details


def test_unknown_level_is_refused() -> None:
    with pytest.raises(InvalidOptions):
        CompressOptions(quality_level="best")


def test_search_finds_the_lowest_passing_quality_on_a_model_curve() -> None:
    # A curve with the slope photos show: score = 0.6 q + 23.5, floor 70 -> q = 78.
    tried: list[int] = []

    def attempt(quality: int) -> Try:
        tried.append(quality)
        return Try(quality, b"", 0.6 * quality + 23.5)

    found = search(attempt, 70.0, 60, 0.4)
    assert found.best.quality in (78, 79, 80, 81)
    assert found.met
    assert len(tried) <= 4


def test_search_returns_the_best_when_nothing_passes() -> None:
    found = search(lambda q: Try(q, b"", q / 2), 70.0, 77, 0.5)
    assert not found.met
    assert found.best.quality == 100
