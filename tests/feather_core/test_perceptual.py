"""SSIMULACRA2 (feather_core.perceptual) against libjxl's own tool, and its basic behaviour."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image, ImageFilter

from feather_core import perceptual
from tests.helpers import open_image
from tests.images import encode, photo
from tests.paths import RESOURCES, ROOT

SSIMULACRA2 = RESOURCES / "ssimulacra2"

pytestmark = pytest.mark.skipif(not perceptual.available(), reason="metric extension not built")

# Scores of libjxl 0.11.2's `ssimulacra2` on the committed pairs (see the resources' README).
LIBJXL_SCORES = [
    ("kodak23-crop.png", "kodak23-crop.q40.jpg", 63.12630423),
    ("kodak23-crop.png", "kodak23-crop.q75.webp", 74.11798688),
    ("kodak23-crop-alpha.png", "kodak23-crop-alpha.q60.webp", 77.33377216),
]


@pytest.mark.parametrize(("original", "distorted", "expected"), LIBJXL_SCORES)
def test_matches_libjxl(original: str, distorted: str, expected: float) -> None:
    reference = open_image((SSIMULACRA2 / original).read_bytes())
    candidate = open_image((SSIMULACRA2 / distorted).read_bytes())
    score = perceptual.ssimulacra2(reference, candidate)
    # libjxl blurs with a float recursive filter, here with its exact 9-tap kernel: on
    # photos near these scores the two agree to a few hundredths.
    assert score == pytest.approx(expected, abs=0.1)


def test_identical_images_score_100() -> None:
    image = photo(200, 150, seed=3)
    assert perceptual.ssimulacra2(image, image.copy()) == pytest.approx(100.0, abs=1e-6)


def test_more_damage_scores_lower() -> None:
    image = photo(320, 240, seed=4)
    scores = [perceptual.ssimulacra2(image, open_image(encode(image, "JPEG", quality=q)))
              for q in (95, 75, 40, 10)]
    assert scores == sorted(scores, reverse=True), scores
    assert scores[0] - scores[-1] > 30, scores


def test_blur_is_penalised() -> None:
    image = photo(320, 240, seed=5)
    soft = image.filter(ImageFilter.GaussianBlur(2))
    assert perceptual.ssimulacra2(image, soft) < 70


def test_one_reference_scores_many_candidates_as_single_calls_do() -> None:
    image = photo(256, 192, seed=6)
    reference = perceptual.Reference(image)
    for quality in (30, 60, 90):
        candidate = open_image(encode(image, "WEBP", quality=quality))
        assert reference.score(candidate) == perceptual.ssimulacra2(image, candidate)


def test_alpha_counts_the_worse_background() -> None:
    image = photo(200, 150, seed=7, mode="RGBA")
    damaged = image.copy()
    damaged.putalpha(Image.new("L", image.size, 255))  # transparency lost
    assert perceptual.ssimulacra2(image, damaged) < 50


def test_size_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="reference"):
        perceptual.ssimulacra2(photo(100, 80), photo(80, 100))


def test_tiny_images_use_the_scales_they_have() -> None:
    # Below 8 px no scale is computed, as in libjxl; 20 px gives two scales.
    image = photo(20, 20, seed=8)
    assert perceptual.ssimulacra2(image, image) == pytest.approx(100.0, abs=1e-6)
    assert perceptual.ssimulacra2(image, image.filter(ImageFilter.GaussianBlur(3))) < 100


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_bands_of_tiles_add_up_to_the_whole_computation(monkeypatch: pytest.MonkeyPatch,
                                                        mode: str) -> None:
    # Odd sizes and small tiles: several bands, a last row and column joined to the ones
    # before them, downsampling that repeats the last pixel at the image's edge.
    image = photo(701, 433, seed=9, mode=mode)
    candidate = open_image(encode(image, "WEBP", quality=45))
    whole = perceptual.Reference(image).score(candidate)
    monkeypatch.setattr(perceptual, "BAND_TILE", 96)
    banded = perceptual.ssimulacra2(image, candidate)
    assert 20 < whole < 90
    assert banded == pytest.approx(whole, abs=2e-3)


# Made with Pillow alone, so that nothing before the measure peaks above the two images.
MEMORY_PROBE = """
import io, resource
from PIL import Image
from feather_core import perceptual
size = (4000, 3000)
image = Image.merge("RGB", [Image.effect_noise(size, 40),
                            Image.linear_gradient("L").resize(size),
                            Image.radial_gradient("L").resize(size)])
buffer = io.BytesIO()
image.save(buffer, "JPEG", quality=70)
candidate = Image.open(buffer)
candidate.load()
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = peak()
banded = perceptual.ssimulacra2(image, candidate)
middle = peak()
whole = perceptual.Reference(image).score(candidate)
print(banded, whole, middle - start, peak() - middle)
"""


def test_a_large_comparison_needs_a_few_bands_of_memory() -> None:
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE], cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=120)
    banded, whole, banded_mb, whole_mb = map(float, done.stdout.split())
    assert banded == pytest.approx(whole, abs=2e-3)
    # 12 MP kept whole take about half a GB; in bands, a fraction of that.
    assert whole_mb > 3 * banded_mb
    assert banded_mb < 120
