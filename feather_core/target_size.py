"""Fit an output under a byte cap with as few encodes as possible.

Quality first, then scale: the search looks for the highest quality whose
output fits; only when even the quality floor does not fit is the picture scaled
down (by the square root of the size ratio, since bytes follow pixel count) and
the quality searched again. The first encode is at the asked quality; its size
and the typical slope of log(size) over quality predict the next quality; after
that each guess interpolates in log-size space between the closest fitting and
non-fitting tries (a secant step, safeguarded to stay inside the bracket).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from feather_core.deadline import Deadline
from feather_core.picture import Picture
from feather_core.steps.resize import resize_frame

QUALITY_FLOOR = 40
# d ln(bytes) / d quality, typical of JPEG, WebP and AVIF between q40 and q90.
TYPICAL_SLOPE = 0.035
# A fit within this share of the cap is good enough to stop searching.
GOOD_ENOUGH = 0.92
MAX_ENCODES = 14
# Stop searching this many seconds before the deadline and return the best so far.
DEADLINE_MARGIN = 0.25


@dataclass(frozen=True)
class Fit:
    """The search result: the bytes, how they were made, and whether they fit."""

    data: bytes
    quality: int
    picture: Picture
    encodes: int
    met: bool


Encode = Callable[[Picture, int], bytes]


def _scaled(picture: Picture, factor: float) -> Picture:
    width, height = picture.size
    size = (max(1, int(width * factor)), max(1, int(height * factor)))
    return replace(picture.map(lambda f: resize_frame(f, size)), nominal_size=None)


class _Search:
    def __init__(self, encode: Encode, target: int, deadline: Deadline) -> None:
        self.encode = encode
        self.target = target
        self.deadline = deadline
        self.encodes = 0
        self.best: Fit | None = None  # largest quality that fits at the current scale
        self.smallest: Fit | None = None

    def out_of_time(self) -> bool:
        return self.encodes >= MAX_ENCODES or self.deadline.expired(DEADLINE_MARGIN)

    def try_quality(self, picture: Picture, quality: int) -> int:
        data = self.encode(picture, quality)
        self.encodes += 1
        fit = Fit(data, quality, picture, self.encodes, len(data) <= self.target)
        if fit.met and (self.best is None or self._better(fit, self.best)):
            self.best = fit
        if self.smallest is None or len(data) < len(self.smallest.data):
            self.smallest = fit
        return len(data)

    @staticmethod
    def _better(fit: Fit, other: Fit) -> bool:
        return (fit.picture.size, fit.quality) > (other.picture.size, other.quality)

    def search_quality(self, picture: Picture, top: int) -> bool:
        """Search qualities in [QUALITY_FLOOR, top]; True if something fit at this scale."""
        lo: tuple[int, int] | None = None  # (quality, size) that fits
        hi: tuple[int, int] = (top, self.try_quality(picture, top))
        if hi[1] <= self.target:
            return True
        floor = min(QUALITY_FLOOR, top)
        guess = round(top - math.log(hi[1] / (self.target * 0.97)) / TYPICAL_SLOPE)
        while not self.out_of_time():
            guess = max(floor, min(guess, hi[0] - 1))
            if lo is not None:
                guess = max(guess, lo[0] + 1)
            if lo is not None and guess >= hi[0]:
                break
            size = self.try_quality(picture, guess)
            if size <= self.target:
                lo = (guess, size)
                if size >= GOOD_ENOUGH * self.target or hi[0] - guess <= 1:
                    break
            else:
                hi = (guess, size)
                if guess <= floor:
                    break
            guess = self._interpolate(lo, hi)
        return lo is not None

    def _interpolate(self, lo: tuple[int, int] | None, hi: tuple[int, int]) -> int:
        goal = math.log(self.target * 0.97)
        if lo is None:
            return round(hi[0] - (math.log(hi[1]) - goal) / TYPICAL_SLOPE)
        span = math.log(hi[1]) - math.log(lo[1])
        if span <= 0:
            return (lo[0] + hi[0]) // 2
        share = (goal - math.log(lo[1])) / span
        return lo[0] + max(1, min(hi[0] - lo[0] - 1, round(share * (hi[0] - lo[0]))))


def fit_to_size(
    picture: Picture,
    encode: Encode,
    target: int,
    quality: int,
    lossy: bool,
    deadline: Deadline,
) -> Fit:
    """Encode ``picture`` at most ``target`` bytes, at the highest quality and size that fit.

    Lossless formats only scale. If the deadline comes first, the best result so
    far is returned (``met`` tells whether it fits).
    """
    search = _Search(encode, target, deadline)
    current, scale = picture, 1.0
    while True:
        if lossy:
            fitted = search.search_quality(current, quality)
        else:
            fitted = search.try_quality(current, quality) <= target
        if fitted or search.out_of_time():
            break
        smallest = search.smallest
        assert smallest is not None
        ratio = target / len(smallest.data)
        scale *= min(0.9, math.sqrt(ratio) * 0.95)
        width, height = picture.size
        if width * scale < 1 and height * scale < 1:
            break
        # Always resample from the unscaled picture, so scaling twice costs no sharpness.
        current = _scaled(picture, scale)
    result = search.best or search.smallest
    assert result is not None
    return replace(result, encodes=search.encodes)
