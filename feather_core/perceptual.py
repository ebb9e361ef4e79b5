"""SSIMULACRA2, the perceptual metric ``quality=auto`` aims at, on Pillow images.

The computation is libjxl's (``tools/ssimulacra2.cc``), done by the C extension
``feather_core/_ssimulacra2.c``; its scores match libjxl's ``ssimulacra2`` tool
(see the README's "Smaller files" section for the measured agreement). Scale: 100 is identical,
90 cannot be told apart at 1:1, 70 is high quality, 50 medium, 30 low.

A reference is prepared once and compared with several candidates, so a quality
search pays for the reference's half of the work only once; it holds about 50 bytes a
pixel. A single comparison (``ssimulacra2``) is computed in horizontal bands of tiles
instead, in the memory of a few bands whatever the image's size, with the same result up
to float rounding. Images with alpha are scored as libjxl does: blended on a dark and on
a light background, the worse score counting.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from PIL import Image

_metric: ModuleType | None
try:
    from feather_core import _ssimulacra2 as _metric
except ImportError:  # built without a compiler: callers fall back to fixed qualities
    _metric = None

# libjxl's backgrounds for images with alpha (dark, light); 0.5 for opaque ones.
_ALPHA_BACKGROUNDS = (0.1, 0.9)
_OPAQUE_BACKGROUND = 0.5
# Rows of tiles of this many px a side per band (a multiple of the extension's GRID): a
# band of an 8,000 px wide image holds about 25 MB of each image, and the margin it reads
# above and below (HALO) adds a third to the work of its own rows.
BAND_TILE = 768


def available() -> bool:
    """Whether the metric's C extension is built."""
    return _metric is not None


def _pixels(image: Image.Image, with_alpha: bool) -> tuple[bytes, int]:
    mode = "RGBA" if with_alpha else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    return image.tobytes(), len(mode)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


class Reference:
    """An original image prepared for scoring candidates of the same size."""

    def __init__(self, image: Image.Image) -> None:
        metric = _built()
        self.size = image.size
        self.alpha = _has_alpha(image)
        pixels, bands = _pixels(image, self.alpha)
        width, height = image.size
        self._prepared = [(bg, metric.reference(pixels, width, height, bands, bg))
                          for bg in _backgrounds(self.alpha)]

    def score(self, candidate: Image.Image) -> float:
        """SSIMULACRA2 of ``candidate`` (same size) against this reference."""
        metric = _built()
        _same_size(self.size, candidate)
        pixels, bands = _pixels(candidate, self.alpha)
        return min(float(metric.compare(prepared, pixels, bands, bg))
                   for bg, prepared in self._prepared)


def ssimulacra2(original: Image.Image, candidate: Image.Image) -> float:
    """SSIMULACRA2 of ``candidate`` against ``original`` (same size), in bounded memory."""
    metric = _built()
    _same_size(original.size, candidate)
    alpha = _has_alpha(original)
    width, height = original.size
    totals: dict[float, list[float]] = {}
    for top, bottom in _bands(height, BAND_TILE):
        first = max(0, top - metric.HALO)
        last = min(height, bottom + metric.HALO)
        box = (0, first, width, last)
        one, bands = _pixels(original.crop(box), alpha)
        two, _ = _pixels(candidate.crop(box), alpha)
        for bg in _backgrounds(alpha):
            part = metric.band_sums(one, two, width, last - first, bands, bg, top - first,
                                    bottom - first, BAND_TILE, width, height)
            kept = totals.get(bg)
            totals[bg] = list(part) if kept is None else [a + b for a, b in zip(kept, part,
                                                                                strict=True)]
    return min(float(metric.score_of_sums(sums, width, height)) for sums in totals.values())


def _built() -> ModuleType:
    if _metric is None:
        raise RuntimeError("feather_core._ssimulacra2 is not built")
    return _metric


def _backgrounds(alpha: bool) -> tuple[float, ...]:
    return _ALPHA_BACKGROUNDS if alpha else (_OPAQUE_BACKGROUND,)


def _same_size(size: tuple[int, int], candidate: Image.Image) -> None:
    if candidate.size != size:
        raise ValueError(f"candidate is {candidate.size}, reference {size}")


def _bands(height: int, side: int) -> Iterator[tuple[int, int]]:
    """Rows of tiles ``side`` px high (a multiple of the extension's GRID, so that every
    band starts on it); a last row under a quarter tile joins the one before it."""
    top = 0
    while top < height:
        bottom = height if top + side + side // 4 >= height else top + side
        yield top, bottom
        top = bottom
