"""``outputFormat=auto``: the smallest output that keeps the look and that the client can show.

Which formats the client can show comes from ``CompressOptions.accept``: the image types a
browser's ``Accept`` header lists (JPEG and PNG are always added, every browser shows them),
or None for a client that sends ``*/*`` or nothing (curl, scripts), which gets WebP, JPEG
and PNG. AVIF is offered only to clients that list it, and even then ``auto`` does not
encode it: at its default speed it costs about 11 times the CPU of a WebP encode for
about 22 % fewer bytes at the same SSIMULACRA2 score (figures in the README, "Smaller files"),
which a synchronous API cannot afford. An AVIF input the client accepts is still returned
as it is when nothing else is smaller.

What to encode comes from a cheap look at the pixels (``classify``):

- photos (many colours, hardly two equal neighbours): lossy WebP, else JPEG;
- graphics and screenshots (at most 256 colours, or mostly flat runs): PNG (a palette when
  the colours allow) and lossless WebP, the smaller wins; with ``quality=auto`` also lossy
  WebP at the level's floor, since any output reaching the floor keeps the look;
- in between (a screenshot with a photo in it): all of them, the smallest wins.

Alpha rules out JPEG; animation keeps WebP when the client shows it; a format that cannot
hold the picture's size (WebP stops at 16383 px a side) is never chosen. The input itself
is a candidate too (see ``compress``), so ``auto`` never returns more bytes than it received
when nothing but compression was asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageChops

from feather_core.decode import Source
from feather_core.encode import EncodeSettings, _metadata, _save
from feather_core.formats import FORMATS, OUTPUT_NAMES, Format, can_hold
from feather_core.picture import Picture

# Every browser shows these, whatever its Accept header says.
ALWAYS_SHOWN = frozenset({"jpeg", "png"})
# What a client gets that accepts anything (curl's */*).
ANY_CLIENT = frozenset({"webp", "jpeg", "png"})

# Classification thresholds, calibrated on the corpus (the README, "Smaller files"): photos have at
# most 32 % of pixels equal to their right-hand neighbour (most under 20 %), screenshots
# and drawings 60 % or more.
PHOTO_MAX_FLAT = 0.35
GRAPHIC_MIN_FLAT = 0.60
PALETTE_COLOURS = 256
# Rows sampled (whole rows, every n-th) for the flatness measure: enough for a stable
# share, cheap at any size.
SAMPLE_ROWS = 96

PHOTO, GRAPHIC, MIXED = "photo", "graphic", "mixed"


@dataclass(frozen=True)
class Content:
    """What the pixels look like, as far as the format choice cares."""

    kind: str
    # Distinct colours, or None when there are more than PALETTE_COLOURS.
    colours: int | None
    # Share of sampled pixels equal to their right-hand neighbour.
    flat: float


@dataclass(frozen=True)
class Candidate:
    """One output to try: a format, and whether its quality setting applies."""

    format: Format
    lossy: bool


def shown_formats(accept: frozenset[str] | None, source_format: str | None = None
                  ) -> frozenset[str]:
    """The writable formats (names) a client with this ``accept`` set can show.

    ``accept`` holds MIME types (``image/webp``...); None means the client accepts
    anything, which ``auto`` answers with WebP, JPEG or PNG (or the input's own format
    when the input is returned unchanged, hence ``source_format``).
    """
    if accept is None:
        own = {source_format} if source_format in OUTPUT_NAMES else set()
        return ANY_CLIENT | own
    listed = {f.name for f in FORMATS.values() if f.writable and f.mime in accept}
    return frozenset(listed) | ALWAYS_SHOWN


def fits(name: str, size: tuple[int, int]) -> bool:
    """Whether format ``name`` can hold a picture of ``size`` (WebP stops at 16383 a side)."""
    return name in OUTPUT_NAMES and can_hold(FORMATS[name], *size)


def provisional(source: Source, accept: frozenset[str] | None) -> Format:
    """The format the pipeline works towards before the pixels are seen.

    It decides what decoding keeps (all frames for WebP) and how uncovered areas are
    filled (transparent when the output may have alpha); the final choice comes after.
    """
    shown = shown_formats(accept)
    if "webp" in shown and fits("webp", source.size):
        return FORMATS["webp"]
    return FORMATS["png"]


def classify(frame: Image.Image) -> Content:
    """Photo, graphic or mixed, from the colour count and the share of flat runs."""
    rgb = frame if frame.mode in ("RGB", "RGBA") else frame.convert(
        "RGBA" if frame.mode in ("LA", "PA") else "RGB")
    colours = rgb.getcolors(PALETTE_COLOURS)
    flat = _flat_share(rgb.convert("RGB") if rgb.mode == "RGBA" else rgb)
    count = len(colours) if colours is not None else None
    if count is not None or flat >= GRAPHIC_MIN_FLAT:
        kind = GRAPHIC
    elif flat <= PHOTO_MAX_FLAT:
        kind = PHOTO
    else:
        kind = MIXED
    return Content(kind, count, flat)


def _flat_share(rgb: Image.Image) -> float:
    width, height = rgb.size
    if width < 2:
        return 1.0
    rows = min(height, SAMPLE_ROWS)
    # Nearest-neighbour in height only: whole rows, each pixel beside its real neighbour.
    strip = rgb.resize((width, rows), Image.Resampling.NEAREST) if rows < height else rgb
    left = strip.crop((0, 0, width - 1, rows))
    right = strip.crop((1, 0, width, rows))
    red, green, blue = ImageChops.difference(left, right).split()
    largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    histogram = largest.histogram()
    return histogram[0] / max(1, sum(histogram))


def candidates(picture: Picture, content: Content, accept: frozenset[str] | None,
               visual: bool = False) -> tuple[Candidate, ...]:
    """The outputs worth encoding for this picture and client, most likely winner first.

    ``visual`` (``quality=auto``): every output reaching the floor keeps the look, so
    graphics get a lossy candidate too, searched to the floor, and the smallest wins.
    """
    shown = shown_formats(accept)
    usable = {name for name in shown if fits(name, picture.size)
              and (FORMATS[name].alpha or not picture.has_alpha)}
    usable.discard("avif")  # see the module's docstring: not worth its encode time
    webp = FORMATS["webp"]
    if picture.animated and "webp" in usable:
        return (Candidate(webp, lossy=True),)
    lossy = [Candidate(FORMATS[name], lossy=True) for name in ("webp", "jpeg") if name in usable]
    lossless = [Candidate(FORMATS["png"], lossy=False)]
    if "webp" in usable:
        lossless.append(Candidate(webp, lossy=False))
    if content.kind == PHOTO:
        return tuple(lossy[:1]) or tuple(lossless)
    if content.kind == GRAPHIC:
        return (*lossy[:1], *lossless) if visual else tuple(lossless)
    return (*lossy[:1], *lossless)


def lossy_fallback(picture: Picture, accept: frozenset[str] | None) -> Candidate | None:
    """A lossy output for when no lossless one fits under ``targetMB``: WebP, else JPEG."""
    shown = shown_formats(accept)
    for name in ("webp", "jpeg"):
        fmt = FORMATS[name]
        if name in shown and fits(name, picture.size) and (fmt.alpha or not picture.has_alpha):
            return Candidate(fmt, lossy=True)
    return None


def encode_webp_lossless(picture: Picture, settings: EncodeSettings) -> bytes:
    """Lossless WebP (all frames when animated); effort maps to libwebp's method."""
    method = 0 if settings.preview else min(settings.effort, 6)
    # For lossless WebP, ``quality`` is the effort spent on compression, not fidelity.
    params: dict[str, Any] = {"lossless": True, "quality": 0 if settings.preview else 80,
                              "method": method, **_metadata(picture, settings, "WEBP")}
    frame = picture.first
    if picture.animated:
        params.update(save_all=True, append_images=list(picture.frames[1:]),
                      duration=list(picture.durations), loop=picture.loop)
    elif frame.mode in ("L", "LA"):
        frame = frame.convert("RGBA" if frame.mode == "LA" else "RGB")
    return _save(frame, "WEBP", **params)
