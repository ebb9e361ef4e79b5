"""PNG that shrinks: a dithered palette below quality 100, then a lossless optimiser.

Quality < 100 reduces the image to at most 256 colours with libimagequant, the
library behind pngquant, with its edge-aware Floyd-Steinberg dithering and alpha
kept. Quality maps to pngquant's ``--quality=min-max``: ``max`` is the quality
itself and ``min`` is ``QUALITY_SPAN`` lower, so the default 80 is pngquant's
``65-80``. libimagequant uses as few colours as reach ``max``; when even 256 cannot
reach ``min``, the image stays truecolour (lossless), as pngquant leaves such a
file alone. Quality 100, or ``lossless``, never quantises.

Every output, palette or truecolour, is then recompressed by oxipng (filters,
colour-type and bit-depth reductions, libdeflate): PNG's lossless part costs
nothing in quality and is 5-40 % of the bytes zlib leaves. A palette that dithering
made noisy can compress worse than the lossless image; when the palette is not
clearly smaller, the lossless image is optimised too and the smaller one is kept.

``mode=preview`` quantises at libimagequant's fastest speed and skips oxipng, so
a preview looks like the final file at a fraction of its cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import oxipng
from PIL import Image

from feather_core.errors import ProcessingFailed

# pngquant --quality=min-max with max = quality: 80 is pngquant's 65-80.
QUALITY_SPAN = 15
# A palette PNG above this share of the truecolour zlib-1 size may lose to the
# lossless image once both are optimised (measured: dithered palettes land at
# 0.06-0.33 of it on screenshots, graphics and photos; the few that lost to
# lossless were at 0.48), so only then is the lossless image optimised as well.
LOSSLESS_CHECK_RATIO = 0.4
# oxipng's level-2 preset (its default, `oxipng -o 2`) costs 0.3-0.6 s of CPU per
# megabyte of raw pixels on screenshots and palettes, up to 0.7 s on photo-like
# truecolour (7.5 s for a 3.6 MP scan; level 1 took 4.2 s for 1.2 % more bytes, level
# 0 0.6 s for 20 % more). Beyond these raw sizes (pixels x bytes a pixel: 1 for a
# palette, 3-4 for truecolour) each steps one level down, so a large truecolour PNG
# stays within a request's time; a 4K screenshot (3840 x 2160) is still level 2.
_OXIPNG_FULL_RAW = 32_000_000
_OXIPNG_REDUCED_RAW = 96_000_000
# Caps oxipng's search (seconds; only photo-like truecolour near the limits above gets
# there): it then keeps the best result found so far.
_OXIPNG_TIMEOUT = 10

SavePng = Callable[[Image.Image, int], bytes]
"""Writes a frame as PNG at a zlib level, with the job's metadata."""


@dataclass(frozen=True)
class PngEffort:
    """How hard the PNG encoder works: libimagequant's speed and oxipng's level."""

    speed: int  # libimagequant: 1 (slowest, best) to 10 (fastest)
    oxipng_level: int | None  # None: no optimiser (preview)

    @classmethod
    def for_job(cls, effort: int, preview: bool) -> PngEffort:
        """Effort 4 (the default) is pngquant's speed 4 and ``oxipng -o 2``."""
        if preview:
            return cls(speed=10, oxipng_level=None)
        speed = max(1, min(10, 8 - effort))
        level = 1 if effort < 4 else 2 if effort < 7 else 3 if effort < 9 else 4
        return cls(speed=speed, oxipng_level=level)

    def level_for(self, raw_bytes: int) -> int | None:
        """oxipng's level for an image of ``raw_bytes`` pixel bytes (None: no oxipng)."""
        if self.oxipng_level is None:
            return None
        steps = (raw_bytes > _OXIPNG_FULL_RAW) + (raw_bytes > _OXIPNG_REDUCED_RAW)
        return max(0, self.oxipng_level - steps)


def quality_range(quality: int) -> tuple[int, int]:
    """libimagequant's (minimum, maximum) quality for a Feather quality of 1-99."""
    return max(0, quality - QUALITY_SPAN), quality


def encode_png(
    frame: Image.Image, quality: int, effort: PngEffort, save: SavePng, *, lossless: bool
) -> bytes:
    """``frame`` as the smallest PNG the quality allows (see the module's docstring)."""
    if lossless or quality >= 100:
        return _lossless(frame, effort, save)
    palette = quantize(frame, quality, effort.speed)
    if palette is None:
        return _lossless(frame, effort, save)
    level = effort.level_for(frame.width * frame.height)
    if level is None:
        # One byte a pixel: zlib's level 6 costs little here and halves a screenshot.
        return save(palette, 6)
    quantised = optimise(save(palette, 0), level)
    truecolour = save(frame, 1)
    if len(quantised) <= LOSSLESS_CHECK_RATIO * len(truecolour):
        return quantised
    exact = _lossless(frame, effort, save, truecolour)
    return exact if len(exact) <= len(quantised) else quantised


def _lossless(frame: Image.Image, effort: PngEffort, save: SavePng,
              written: bytes | None = None) -> bytes:
    level = effort.level_for(frame.width * frame.height * len(frame.getbands()))
    if level is None:
        return written or save(frame, 1)
    return optimise(written or save(frame, 0), level)


def quantize(frame: Image.Image, quality: int, speed: int) -> Image.Image | None:
    """A palette image (``P``, alpha in its ``transparency``) for ``frame``, or None.

    None when 256 colours cannot reach the minimum of ``quality_range(quality)``.
    """
    # Imported here: the library is only needed when a PNG is quantised, and loading
    # its extension is not free for the CLI's --help or a JPEG job.
    from imagequant import ffi, lib

    rgba = frame if frame.mode == "RGBA" else frame.convert("RGBA")
    width, height = rgba.size
    pixels = ffi.from_buffer(rgba.tobytes())  # kept alive until the remap is written
    low, high = quality_range(quality)
    attr = lib.liq_attr_create()
    if attr == ffi.NULL:
        raise ProcessingFailed("The PNG quantiser could not start")
    image = result = ffi.NULL
    result_p = ffi.new("liq_result**")
    try:
        _check(lib, lib.liq_set_quality(attr, low, high))
        _check(lib, lib.liq_set_speed(attr, speed))
        image = lib.liq_image_create_rgba(attr, pixels, width, height, 0)
        if image == ffi.NULL:
            raise ProcessingFailed("The PNG quantiser refused the image")
        code = lib.liq_image_quantize(image, attr, result_p)
        if code == lib.LIQ_QUALITY_TOO_LOW:
            return None
        _check(lib, code)
        result = result_p[0]
        _check(lib, lib.liq_set_dithering_level(result, 1.0))
        indices = ffi.new("unsigned char[]", width * height)
        _check(lib, lib.liq_write_remapped_image(result, image, indices, width * height))
        palette = lib.liq_get_palette(result)
        entries = [(e.r, e.g, e.b, e.a) for e in (palette.entries[i] for i in range(palette.count))]
        out = Image.frombytes("P", (width, height), bytes(ffi.buffer(indices)))
    finally:
        if result != ffi.NULL:
            lib.liq_result_destroy(result)
        if image != ffi.NULL:
            lib.liq_image_destroy(image)
        lib.liq_attr_destroy(attr)
    out.putpalette([channel for entry in entries for channel in entry[:3]])
    alphas = bytes(entry[3] for entry in entries)
    if any(a < 255 for a in alphas):
        out.info["transparency"] = alphas
    return out


def _check(lib: object, code: int) -> None:
    if code != lib.LIQ_OK:  # type: ignore[attr-defined]
        raise ProcessingFailed(f"The PNG quantiser failed (libimagequant error {code})")


def optimise(png: bytes, level: int) -> bytes:
    """``png`` recompressed losslessly by oxipng at ``level`` (its ``-o`` preset).

    Every chunk is kept (metadata was chosen when the PNG was written). The input is
    returned as it is when oxipng cannot make it smaller or cannot read it.
    """
    try:
        out = oxipng.optimize_from_memory(png, level=level, strip=oxipng.StripChunks.none(),
                                          timeout=_OXIPNG_TIMEOUT)
    except oxipng.PngError:
        return png
    return out if len(out) < len(png) else png
