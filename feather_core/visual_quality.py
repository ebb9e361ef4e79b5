"""``quality=auto``: the lowest encoder quality whose output still reaches a perceptual floor.

The floor is a SSIMULACRA2 score (``feather_core.perceptual``), one per named level:

=========  =====  ==========================================================
level      floor  what it looks like (libjxl's description of the scale)
=========  =====  ==========================================================
``high``   80     between high quality and visually lossless at 1:1
``good``   70     high quality; the default (``auto`` = ``auto:good``)
``eco``    60     between medium and high: small files, artefacts on close look
=========  =====  ==========================================================

Every try is encoded, decoded and scored, so the score reported is the score of the bytes
returned (above ``VERIFY_PIXELS`` the first tries run on crops, see ``_search_from_crops``).
The search needs few encodes because the score moves nearly
linearly with quality near a floor: the first try is at the quality that reaches the
floor on a median photo (measured on the Kodak set per encoder), the next ones follow the
line through the tries (a typical slope until two tries give their own), aiming a little
above the floor, and the search stops as soon as the best passing try is within
``CLOSE_ENOUGH`` of the floor or the quality that fails is one step below it.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image, _webp

from feather_core import perceptual
from feather_core.allocator import release_freed_memory
from feather_core.deadline import Deadline
from feather_core.encode import flatten
from feather_core.options import LEVELS
from feather_core.picture import Picture

# First try per encoder and level: the median quality that reaches the floor on the Kodak
# photos (WebP method 4; JPEG 4:2:0 with optimised tables). AVIF (speed 6): ``good`` from
# five of them, the other levels extrapolated at its slope.
FIRST_TRY: dict[str, dict[str, int]] = {
    "webp": {"high": 87, "good": 77, "eco": 56},
    "jpeg": {"high": 85, "good": 68, "eco": 47},
    "avif": {"high": 78, "good": 59, "eco": 40},
}
# Typical score points per quality step near the floors, until two tries measure it.
SLOPE: dict[str, float] = {"webp": 0.6, "jpeg": 0.55, "avif": 0.5}
SLOPE_RANGE = (0.15, 2.5)
# Aim this far above the floor, so a try that lands a little short of the model still passes.
AIM = 0.3
# A passing try this close to the floor is taken without trying lower.
CLOSE_ENOUGH = 2.5
MAX_TRIES = 5


@dataclass(frozen=True)
class Try:
    """One candidate: its quality, bytes and score."""

    quality: int
    data: bytes
    score: float


@dataclass(frozen=True)
class Search:
    """The search's answer: the chosen try, and every try made."""

    best: Try
    tries: tuple[Try, ...]
    floor: float

    @property
    def met(self) -> bool:
        return self.best.score >= self.floor


Score = Callable[[int], Try]


def _typical_slope(encoder: str) -> float:
    """Score points per quality step near the floors, before tries measure their own."""
    return SLOPE.get(encoder, 0.5)


def first_try(encoder: str, level: str) -> int:
    """The quality the search starts from for ``encoder`` at ``level``."""
    return FIRST_TRY.get(encoder, FIRST_TRY["webp"])[level]


def search(attempt: Score, floor: float, start: int, slope: float,
           max_tries: int = MAX_TRIES, out_of_time: Callable[[], bool] | None = None,
           close_enough: float = CLOSE_ENOUGH) -> Search:
    """The lowest quality in 1..100 whose try scores at least ``floor``, in few tries.

    ``attempt(q)`` encodes at quality ``q`` and scores the result. When no try reaches the
    floor (100 included, or tries or time ran out), the best-scoring try is returned.
    """
    tries: dict[int, Try] = {}
    quality: int | None = max(1, min(100, start))
    while quality is not None:
        tries[quality] = attempt(quality)
        if len(tries) >= max_tries or (out_of_time is not None and out_of_time()):
            break
        quality = next_quality(tries, floor, slope, close_enough)
    passing = [t for t in tries.values() if t.score >= floor]
    chosen = (min(passing, key=lambda t: t.quality) if passing
              else max(tries.values(), key=lambda t: t.score))
    return Search(best=chosen, tries=tuple(tries.values()), floor=floor)


def next_quality(tries: dict[int, Try], floor: float, slope: float,
                 close_enough: float = CLOSE_ENOUGH) -> int | None:
    """The quality to try after ``tries`` (by quality), or None when the search is done."""
    passing = sorted(q for q, t in tries.items() if t.score >= floor)
    failing = sorted(q for q, t in tries.items() if t.score < floor)
    best = passing[0] if passing else None
    if best is None:
        top = failing[-1]
        if top >= 100:
            return None
        return min(100, max(_aim(tries, top, None, floor, slope), top + 1))
    below = max((q for q in failing if q < best), default=None)
    if tries[best].score - floor < close_enough or best == 1:
        return None
    if below is not None and best - below <= 1:
        return None
    quality = max(_aim(tries, best, below, floor, slope), (below or 0) + 1)
    return None if quality >= best else quality


def _aim(tries: dict[int, Try], anchor: int, other: int | None, floor: float,
         slope: float) -> int:
    """The quality the line through the tries gives ``floor + AIM`` at, rounded up."""
    local = _measured_slope(tries, anchor, other)
    if local is not None:
        slope = _clamped(local)
    wanted = anchor + (floor + AIM - tries[anchor].score) / slope
    return max(1, min(100, math.ceil(wanted)))


def _clamped(slope: float) -> float:
    return min(SLOPE_RANGE[1], max(SLOPE_RANGE[0], slope))


def _measured_slope(tries: dict[int, Try], anchor: int, other: int | None) -> float | None:
    # The secant through the anchor and the nearest other try (the bracket's other end
    # when there is one): the closest pair describes the curve best where the floor is.
    if other is None:
        others = [q for q in tries if q != anchor]
        if not others:
            return None
        other = min(others, key=lambda q: abs(q - anchor))
    if other == anchor:
        return None
    return (tries[anchor].score - tries[other].score) / (anchor - other)


# Stop trying this many seconds before the deadline and keep the best try so far.
DEADLINE_MARGIN = 0.25
# Pictures up to this size are searched whole. Above it, each try of the whole picture
# (an encode of several seconds) is too dear to search with: the search runs on four
# crops of CROP px spread over the picture, each encoded and scored alone, and then
# moves to the whole picture at the quality found there, where every try is scored too
# (``perceptual.ssimulacra2`` works in bands, so a score costs little memory at any size)
# and the same search goes on for at most FULL_TRIES. The crops' estimate is the middle
# of their mean and their minimum (crops score higher than the whole picture on average,
# their worst one lower); aiming SAMPLE_MARGIN above the floor there makes the first
# whole try pass on most photos.
VERIFY_PIXELS = 1_500_000
CROP = 512
BLOCK = 16
SAMPLE_MARGIN = 1.5
CROP_TRIES = 3
# A whole try costs about 1.7 encodes (encode, decode, score): fewer of them, and a passing
# one is kept a little further from the floor than on small pictures.
FULL_TRIES = 3
FULL_CLOSE_ENOUGH = 3.0
# From this size on, freed memory goes back to the kernel before a whole try is decoded.
RELEASE_PIXELS = 16_000_000


def reference_frame(picture: Picture, encoder: str) -> Image.Image:
    """What the output is judged against: the first frame, flattened where JPEG flattens it."""
    frame = picture.first
    return flatten(frame) if encoder == "jpeg" else frame


def decoded(data: bytes) -> Image.Image:
    """The first frame of an encoded output, loaded."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_frame(data)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


def _webp_frame(data: bytes) -> Image.Image:
    # Pillow's WebP reader keeps libwebp's canvas and the frame's bytes beside the image
    # until it is closed, and the image must be copied before closing: at the peak, four
    # frames of a 50 MP picture (700 MB). Read here, the canvas goes before the image is
    # made, and the image is the frame's bytes themselves (RGBX or RGBA, read-only).
    decoder = _webp.WebPAnimDecoder(data)
    size, _, _, _, rawmode = decoder.get_info()
    frame = decoder.get_next()[0]
    del decoder
    return Image.frombuffer(rawmode, size, frame, "raw", rawmode, 0, 1)


def sample_crops(frame: Image.Image) -> list[Image.Image]:
    """Four square crops of ``CROP`` px, spread over ``frame`` on its block grid."""
    width, height = frame.size
    side = min(CROP, width, height)
    crops = []
    for fx, fy in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
        x = _on_grid(fx * width - side / 2, width - side)
        y = _on_grid(fy * height - side / 2, height - side)
        crops.append(frame.crop((x, y, x + side, y + side)))
    return crops


def _on_grid(position: float, span: int) -> int:
    value = max(0, min(span, int(position)))
    return value - value % BLOCK


def sample_score(scores: list[float]) -> float:
    """The picture's score estimated from its crops' (see ``VERIFY_PIXELS``)."""
    return (sum(scores) / len(scores) + min(scores)) / 2


def encode_to_level(picture: Picture, encode_at: Callable[[Picture, int], bytes], encoder: str,
                    level: str, deadline: Deadline) -> Search:
    """The lowest quality at which ``encode_at(picture, q)`` reaches ``level``'s floor.

    Every try of the whole picture is scored, so the score reported is the output's own,
    except when the deadline leaves no time to score a large picture's only try (the
    crops' estimate is reported then). Above ``VERIFY_PIXELS`` the search starts on crops.
    Needs the metric's C extension (``perceptual.available()``). Animations are judged on
    their first frame.
    """
    floor = LEVELS[level]
    full = reference_frame(picture, encoder)
    if full.width * full.height > VERIFY_PIXELS:
        return _search_from_crops(picture, full, encode_at, encoder, level, deadline)

    reference = perceptual.Reference(full)

    def attempt(quality: int) -> Try:
        data = encode_at(picture, quality)
        return Try(quality, data, reference.score(decoded(data)))

    return search(attempt, floor, first_try(encoder, level), _typical_slope(encoder),
                  out_of_time=lambda: deadline.expired(DEADLINE_MARGIN))


def _search_from_crops(picture: Picture, full: Image.Image,
                       encode_at: Callable[[Picture, int], bytes], encoder: str, level: str,
                       deadline: Deadline) -> Search:
    floor = LEVELS[level]
    typical = _typical_slope(encoder)
    crops = [(replace(picture, frames=(crop,), durations=(), icc=None, exif=None, xmp=None),
              perceptual.Reference(crop)) for crop in sample_crops(full)]
    sampled = 0.0  # seconds the crops' tries took, to foresee what a whole try takes

    def attempt_sample(quality: int) -> Try:
        nonlocal sampled
        started = time.monotonic()
        data = b""
        scores = []
        for small, reference in crops:
            data = encode_at(small, quality)
            scores.append(reference.score(decoded(data)))
        sampled += time.monotonic() - started
        return Try(quality, data, sample_score(scores))

    found = search(attempt_sample, floor + SAMPLE_MARGIN, first_try(encoder, level),
                   typical, max_tries=CROP_TRIES,
                   out_of_time=lambda: deadline.expired(DEADLINE_MARGIN))
    estimates = {t.quality: t.score - SAMPLE_MARGIN for t in found.tries}
    area = full.width * full.height
    growth = area / sum(small.size[0] * small.size[1] for small, _ in crops)
    one_try = growth * sampled / len(found.tries)

    def time_for(seconds: float) -> bool:
        left = deadline.remaining()
        return left is None or left > seconds + DEADLINE_MARGIN

    def attempt_full(quality: int) -> Try:
        data = encode_at(picture, quality)
        if not time_for(one_try / 2):  # no time to score it: the crops' estimate
            nearest = min(estimates, key=lambda q: abs(q - quality))
            return Try(quality, data, estimates[nearest])
        if area >= RELEASE_PIXELS:
            # The encoder's freed buffers would stay beside the decoded output: the
            # job's peak under its memory ceiling (measured at 50 MP: 1,036 MB kept,
            # 876 MB given back).
            release_freed_memory()
        return Try(quality, data, perceptual.ssimulacra2(full, decoded(data)))

    # Where the crops' search would have gone next had it not run out of tries, when the
    # whole try can be scored; else the crops' answer, whose estimate is measured.
    start = next_quality({t.quality: t for t in found.tries}, floor + SAMPLE_MARGIN,
                         typical) if time_for(one_try) else None
    slope = _crops_slope(found.tries, typical)
    whole = search(attempt_full, floor, start or found.best.quality, slope, max_tries=FULL_TRIES,
                   out_of_time=lambda: not time_for(one_try), close_enough=FULL_CLOSE_ENOUGH)
    return Search(best=whole.best, tries=(*found.tries, *whole.tries), floor=floor)


def _crops_slope(tries: tuple[Try, ...], typical: float) -> float:
    # The whole picture's curve runs near the crops' one. Between their furthest tries the
    # slope is measured best: neighbouring qualities give a noisy secant.
    low = min(tries, key=lambda t: t.quality)
    high = max(tries, key=lambda t: t.quality)
    if high.quality - low.quality < 3:
        return typical
    return _clamped((high.score - low.score) / (high.quality - low.quality))


def score_of(picture: Picture, data: bytes, encoder: str) -> float | None:
    """SSIMULACRA2 of an output against its picture, or None without the metric."""
    if not perceptual.available():
        return None
    return perceptual.ssimulacra2(reference_frame(picture, encoder), decoded(data))
