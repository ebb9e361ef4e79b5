"""Fit an output under a byte cap with as few encodes as possible.

Large pictures are first estimated on a reduced copy, a sample of full-resolution
tiles (see ``_Sample``): a search there, at a fraction of the cost of one full-size
encode, finds the quality whose bytes, scaled to the full area, meet the cap, and
the curve's slope. The full-size search starts from that estimate and usually
confirms it in one or two full-size encodes instead of finding its way in four or
five.

Quality first, then scale: the search looks for the highest quality (up to
``QUALITY_CEILING``, or the asked quality when higher) whose output fits; only
when even ``QUALITY_FLOOR`` does not fit is the picture scaled down, once, to a
size where a quality above the floor fits, and quality is searched again there.

Every guess comes from a model in log-size space: ``ln(bytes)`` falls on a line
against a quality coordinate. For JPEG that coordinate is the log of libjpeg's
quantiser scale (``5000/q`` below 50, ``200 - 2q`` above), on which JPEG sizes
lie nearly straight; for the other encoders it is the quality itself. The first
encode (at the asked quality) and its bytes per pixel anchor the line with a
typical slope; each later encode replaces the slope by the secant through the
closest fitting and non-fitting tries, safeguarded to stay inside the bracket.
The aim is the middle of [``GOOD_ENOUGH`` × cap, cap], so most searches stop at
their second or third encode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image

from feather_core.deadline import Deadline
from feather_core.picture import Picture
from feather_core.steps.resize import resize_frame

QUALITY_FLOOR = 40
QUALITY_CEILING = 95
# A fit within this share of the cap is good enough to stop searching.
GOOD_ENOUGH = 0.90
AIM = 0.95
# d ln(bytes) / d coordinate: JPEG against ln(quantiser scale), others against quality.
JPEG_SLOPE = 0.62
OTHER_SLOPE = 0.035
# bytes grow like pixels ** PIXEL_EXPONENT when a photo is scaled (detail gets denser).
PIXEL_EXPONENT = 0.85
# When the floor is predicted this far over the cap, scale at once instead of trying it.
SKIP_FLOOR_MARGIN = 1.25
# After scaling, the floor should land this far under the cap, so quality has room to rise.
SCALE_HEADROOM = 0.8
MAX_ENCODES = 14
# Pictures from this size are first searched on a sample: SAMPLE_GRID x SAMPLE_GRID
# tiles of SAMPLE_TILE px (1 MP) taken at full resolution across the picture.
SAMPLE_FROM_PIXELS = 4_000_000
SAMPLE_TILE = 128
SAMPLE_GRID = 8
SAMPLE_MAX_ENCODES = 8
# A sample predicts within about 10 %: a full-size floor predicted over the cap is not
# tried (the JPEG-table estimate, rougher, is given SKIP_FLOOR_MARGIN).
SAMPLE_SKIP_MARGIN = 1.0
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
    # Of ``encodes``, how many were of the reduced copy the search was estimated on.
    estimate_encodes: int = 0


Encode = Callable[[Picture, int], bytes]


def _jpeg_coordinate(quality: int) -> float:
    # libjpeg's jpeg_quality_scaling: the quantisation tables are scaled by this percentage.
    q = max(1, min(100, quality))
    scale = 5000 / q if q < 50 else 200 - 2 * q
    return -math.log(max(scale, 0.5))


def _linear_coordinate(quality: int) -> float:
    return float(quality)


@dataclass(frozen=True)
class _Model:
    """ln(bytes) against a quality coordinate; typical slope until two tries calibrate it."""

    coordinate: Callable[[int], float]
    slope: float

    @classmethod
    def for_output(cls, data: bytes) -> _Model:
        if data[:3] == b"\xff\xd8\xff":
            return cls(_jpeg_coordinate, JPEG_SLOPE)
        return cls(_linear_coordinate, OTHER_SLOPE)

    def size_at(self, anchor: tuple[int, int], quality: int) -> float:
        q0, size = anchor
        return size * math.exp(self.slope * (self.coordinate(quality) - self.coordinate(q0)))

    def quality_for(self, anchor: tuple[int, int], goal: float) -> float:
        """The (fractional) quality the line through ``anchor`` gives ``goal`` bytes at."""
        q0, size = anchor
        wanted = self.coordinate(q0) + math.log(goal / size) / self.slope
        return self._invert(wanted)

    def between(self, lo: tuple[int, int], hi: tuple[int, int], goal: float) -> float:
        """Secant in (coordinate, ln bytes) between a fitting and a non-fitting try."""
        x0, x1 = self.coordinate(lo[0]), self.coordinate(hi[0])
        y0, y1 = math.log(lo[1]), math.log(hi[1])
        if y1 <= y0 or x1 <= x0:
            return (lo[0] + hi[0]) / 2
        return self._invert(x0 + (math.log(goal) - y0) * (x1 - x0) / (y1 - y0))

    def calibrated(self, a: tuple[int, int], b: tuple[int, int]) -> _Model:
        """The slope through two tries of one picture, kept within a sane range."""
        dx = self.coordinate(b[0]) - self.coordinate(a[0])
        if dx == 0 or a[1] <= 0 or b[1] <= 0:
            return self
        slope = math.log(b[1] / a[1]) / dx
        return replace(self, slope=min(self.slope * 2.5, max(self.slope * 0.4, slope)))

    def _invert(self, wanted: float) -> float:
        # The coordinate is increasing in quality; bisect on the integers 1..100.
        lo, hi = 1, 100
        if wanted <= self.coordinate(lo):
            return lo
        if wanted >= self.coordinate(hi):
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.coordinate(mid) <= wanted:
                lo = mid
            else:
                hi = mid
        x0, x1 = self.coordinate(lo), self.coordinate(hi)
        return lo + (wanted - x0) / (x1 - x0)


def _scaled(picture: Picture, factor: float) -> Picture:
    width, height = picture.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return replace(picture.map(lambda f: resize_frame(f, size)), nominal_size=None)


class _Search:
    def __init__(self, encode: Encode, target: int, deadline: Deadline,
                 max_encodes: int = MAX_ENCODES) -> None:
        self.encode = encode
        self.target = target
        self.deadline = deadline
        self.max_encodes = max_encodes
        self.encodes = 0
        self.best: Fit | None = None  # largest picture, then highest quality, that fits
        self.smallest: Fit | None = None
        self.model: _Model | None = None
        self.tries: list[tuple[Picture, int, int]] = []  # (picture, quality, bytes)

    def out_of_time(self) -> bool:
        return self.encodes >= self.max_encodes or self.deadline.expired(DEADLINE_MARGIN)

    def try_quality(self, picture: Picture, quality: int) -> int:
        data = self.encode(picture, quality)
        self.encodes += 1
        self.tries.append((picture, quality, len(data)))
        if self.model is None:
            self.model = _Model.for_output(data)
        fit = Fit(data, quality, picture, self.encodes, len(data) <= self.target)
        if fit.met and (self.best is None or self._better(fit, self.best)):
            self.best = fit
        if self.smallest is None or len(data) < len(self.smallest.data):
            self.smallest = fit
        return len(data)

    @staticmethod
    def _better(fit: Fit, other: Fit) -> bool:
        return (fit.picture.size, fit.quality) > (other.picture.size, other.quality)

    def good(self, size: int) -> bool:
        return GOOD_ENOUGH * self.target <= size <= self.target

    def tried(self, picture: Picture) -> list[tuple[int, int]]:
        """The (quality, bytes) tries of ``picture`` so far."""
        return [(q, size) for p, q, size in self.tries if p is picture]

    def search_quality(
        self, picture: Picture, first: tuple[int, int], floor: int, ceiling: int
    ) -> tuple[int, int] | None:
        """Search [floor, ceiling] from ``first`` and the earlier tries of ``picture``.

        Returns the best try that fits (highest quality), or None.
        """
        assert self.model is not None
        lo: tuple[int, int] | None = None  # the best try that fits
        hi: tuple[int, int] | None = None  # the lowest try that does not
        for tried in {first, *self.tried(picture)}:
            if tried[1] <= self.target:
                lo = tried if lo is None or tried[0] > lo[0] else lo
            else:
                hi = tried if hi is None or tried[0] < hi[0] else hi
        goal = AIM * self.target
        while not self.out_of_time():
            if lo is not None and (self.good(lo[1]) or lo[0] >= ceiling):
                break
            if hi is not None and hi[0] <= floor:
                break
            if lo is not None and hi is not None:
                if hi[0] - lo[0] <= 1:  # adjacent, or sizes not monotonic in quality
                    break
                guess = self.model.between(lo, hi, goal)
                quality = max(lo[0] + 1, min(hi[0] - 1, round(guess)))
            else:
                anchor = lo or hi
                assert anchor is not None
                quality = round(self.model.quality_for(anchor, goal))
                quality = max(floor, min(ceiling, quality))
                if lo is not None:
                    quality = max(quality, lo[0] + 1)
                if hi is not None:
                    quality = min(quality, hi[0] - 1)
            size = self.try_quality(picture, quality)
            previous = lo if size <= self.target else hi
            if previous is not None:
                self.model = self.model.calibrated(previous, (quality, size))
            elif lo is not None or hi is not None:
                self.model = self.model.calibrated((lo or hi), (quality, size))  # type: ignore[arg-type]
            fits = size <= self.target
            if fits:
                lo = (quality, size)
            else:
                hi = (quality, size)
        return lo


def fit_to_size(
    picture: Picture,
    encode: Encode,
    target: int,
    quality: int,
    lossy: bool,
    deadline: Deadline,
    estimate: tuple[int, float] | None = None,
    *,
    floor: int = QUALITY_FLOOR,
    allow_scaling: bool = True,
) -> Fit:
    """Encode ``picture`` at most ``target`` bytes, at the highest quality and size that fit.

    Lossy formats: the first encode is at ``quality``; the search then moves within
    [``QUALITY_FLOOR``, max(``quality``, ``QUALITY_CEILING``)] and scales the picture
    down only when the floor does not fit. Lossless formats only scale. If the
    deadline comes first, the best result so far is returned (``met`` tells whether
    it fits).

    ``estimate`` is a JPEG output's likely (quality, bytes) at full size, known
    without encoding (from a JPEG input's header): the first encode is then aimed at
    the cap instead of made at ``quality``, and skipped when even the floor is
    predicted far over the cap. Without it, a picture of ``SAMPLE_FROM_PIXELS`` or
    more is estimated on a sample of it the same way.

    ``floor`` lowers the quality floor; without ``allow_scaling`` the picture keeps its
    size and the result may not fit (``met`` False) when even the floor does not.
    """
    search = _Search(encode, target, deadline)
    if not lossy:
        return _fit_by_scale(picture, search, quality)
    ceiling = max(quality, QUALITY_CEILING)
    floor = min(floor, quality)
    first: tuple[int, int] | None = None
    sample: _Sample | None = None
    if estimate is not None:
        search.model = _Model(_jpeg_coordinate, JPEG_SLOPE)
        anchor = (estimate[0], round(estimate[1]))
    else:
        sample = _Sample.of(picture, encode, target, deadline)
    margin = SKIP_FLOOR_MARGIN
    if sample is not None:
        search.model, anchor = sample.estimate(quality, floor, ceiling)
        margin = SAMPLE_SKIP_MARGIN
    if search.model is None:
        first = (quality, search.try_quality(picture, quality))
        assert search.model is not None
        anchor = first
    elif search.model.size_at(anchor, floor) <= margin * target:
        first = anchor = _aimed(search, picture, sample, anchor, floor, ceiling)
    assert search.model is not None
    floor_bytes = search.model.size_at(anchor, floor)
    fits_at_full = False
    if first is None and not allow_scaling:
        start = max(floor, min(ceiling, round(search.model.quality_for(anchor, AIM * target))))
        first = (start, search.try_quality(picture, start))
    if first is not None and (first[1] <= target or floor_bytes <= margin * target
                              or not allow_scaling):
        fits_at_full = search.search_quality(picture, first, floor, ceiling) is not None
    samples = [sample] if sample is not None else []
    current, scale = picture, 1.0
    while allow_scaling and not fits_at_full and not search.out_of_time():
        # Size at the floor, measured when the search reached it, else predicted.
        tried_floor = search.smallest
        assert search.model is not None
        if tried_floor is not None and tried_floor.quality == floor and \
                tried_floor.picture is current:
            floor_bytes = float(len(tried_floor.data))
        else:
            floor_bytes = search.model.size_at(anchor, floor)
        # Bytes follow pixels ** PIXEL_EXPONENT, pixels follow the linear factor squared.
        factor = (SCALE_HEADROOM * target / floor_bytes) ** (1 / (2 * PIXEL_EXPONENT))
        scale *= min(0.9, factor)
        width, height = picture.size
        if width * scale < 1 and height * scale < 1:
            break
        # Always resample from the unscaled picture, so scaling twice costs no sharpness.
        shrink = (round(width * scale) * round(height * scale)) / (width * height)
        previous, current = current, _scaled(picture, scale)
        # From the previous size's floor, by the pixel rule.
        before = previous.size[0] * previous.size[1] / (width * height)
        anchor = (floor, round(floor_bytes * (shrink / before) ** PIXEL_EXPONENT))
        sub = _Sample.of(current, encode, target, deadline)
        if sub is not None:
            samples.append(sub)
            guess = max(floor, min(ceiling, round(search.model.quality_for(anchor, AIM * target))))
            search.model, anchor = sub.estimate(guess, floor, ceiling)
            if search.model.size_at(anchor, floor) > SAMPLE_SKIP_MARGIN * target:
                continue  # the floor is still too big at this size: scale again
        first = _aimed(search, current, sub, anchor, floor, ceiling)
        anchor = first
        if search.search_quality(current, first, floor, ceiling) is not None:
            break
    result = search.best or search.smallest
    assert result is not None
    sampled = sum(s.search.encodes for s in samples)
    return replace(result, encodes=search.encodes + sampled, estimate_encodes=sampled)


def _aimed(search: _Search, picture: Picture, sample: _Sample | None, anchor: tuple[int, int],
           floor: int, ceiling: int) -> tuple[int, int]:
    """The first encode of ``picture``, aimed at the cap from an estimated ``anchor``.

    With a sample, a first encode outside the band re-aims the second from it.
    """
    assert search.model is not None
    target = search.target
    start = max(floor, min(ceiling, round(search.model.quality_for(anchor, AIM * target))))
    first = (start, search.try_quality(picture, start))
    if sample is not None and not search.good(first[1]) and \
            not (first[1] <= target and start >= ceiling):
        again = sample.refine(first, floor, ceiling)
        if again is not None and again != start:
            first = (again, search.try_quality(picture, again))
    return first


def tile_mosaic(frame: Image.Image) -> Image.Image:
    """``SAMPLE_GRID``² tiles of ``SAMPLE_TILE`` px spread evenly over ``frame``, side by side."""
    width, height = frame.size
    tile, grid = SAMPLE_TILE, SAMPLE_GRID
    mosaic = Image.new(frame.mode, (tile * grid, tile * grid))
    for i in range(grid):
        for j in range(grid):
            x, y = (width - tile) * i // (grid - 1), (height - tile) * j // (grid - 1)
            mosaic.paste(frame.crop((x, y, x + tile, y + tile)), (i * tile, j * tile))
    return mosaic


def mosaic_sample(picture: Picture) -> tuple[Picture, float] | None:
    """``picture``'s mosaic (``tile_mosaic``) and how many times larger the picture is,
    when the picture is large enough for a sample to pay (still pictures only)."""
    width, height = picture.size
    if width * height < SAMPLE_FROM_PIXELS or picture.animated \
            or min(width, height) < 2 * SAMPLE_TILE:
        return None
    tiles = Picture((tile_mosaic(picture.first),))
    return tiles, width * height / (tiles.size[0] * tiles.size[1])


class _Sample:
    """A search on a full-resolution sample of the picture, scaled up to its whole area.

    Tiles keep the detail and noise of the full-resolution image, which a downscaled
    copy loses: their bytes times the area ratio predict the full size within about
    10 % on 12-24 MP photos, where a downscaled copy was off by up to 40 %. The ratio
    varies little with quality, so once one full-size encode has measured it, the
    sample (a twelfth of the cost) aims the next one.
    """

    def __init__(self, picture: Picture, search: _Search, growth: float, overhead: int,
                 target: int) -> None:
        self.picture = picture
        self.search = search
        self.growth = growth
        self.overhead = overhead
        self.target = target

    @classmethod
    def of(cls, picture: Picture, encode: Encode, target: int,
           deadline: Deadline) -> _Sample | None:
        """A sample of ``picture``, when it is large enough for one to pay."""
        sample = mosaic_sample(picture)
        if sample is None:
            return None
        tiles, growth = sample
        # Metadata is written once whatever the area: counted apart, not multiplied.
        overhead = len(picture.icc or b"") + len(picture.xmp or b"") + \
            (len(picture.exif.tobytes()) if picture.exif is not None else 0)
        search = _Search(encode, 1, deadline, SAMPLE_MAX_ENCODES)
        return cls(tiles, search, growth, overhead, target)

    def _aim(self, growth: float) -> None:
        self.search.target = max(1, round((self.target - self.overhead) / growth))

    def estimate(self, quality: int, floor: int, ceiling: int) -> tuple[_Model, tuple[int, int]]:
        """The size model and a full-size (quality, bytes) anchor near the cap."""
        self._aim(self.growth)
        first = (quality, self.search.try_quality(self.picture, quality))
        found = self.search.search_quality(self.picture, first, floor, ceiling)
        if found is None:  # not even the floor fits: the smallest try anchors the scaling
            smallest = min(self.search.tried(self.picture))
            found = smallest
        assert self.search.model is not None
        return self.search.model, (found[0], round(found[1] * self.growth) + self.overhead)

    def refine(self, measured: tuple[int, int], floor: int, ceiling: int) -> int | None:
        """The next full-size quality, from the sample rescaled by a full-size try."""
        quality, size = measured
        sampled = dict(self.search.tried(self.picture))
        if quality not in sampled:
            if self.search.out_of_time():
                return None
            sampled[quality] = self.search.try_quality(self.picture, quality)
        self._aim((size - self.overhead) / max(1, sampled[quality]))
        found = self.search.search_quality(self.picture, (quality, sampled[quality]),
                                           floor, ceiling)
        return found[0] if found is not None else floor


def _fit_by_scale(picture: Picture, search: _Search, quality: int) -> Fit:
    current, scale = picture, 1.0
    while search.try_quality(current, quality) > search.target and not search.out_of_time():
        smallest = search.smallest
        assert smallest is not None
        ratio = search.target / len(smallest.data)
        scale *= min(0.9, math.sqrt(ratio) * 0.95)
        width, height = picture.size
        if width * scale < 1 and height * scale < 1:
            break
        current = _scaled(picture, scale)
    result = search.best or search.smallest
    assert result is not None
    return replace(result, encodes=search.encodes)
