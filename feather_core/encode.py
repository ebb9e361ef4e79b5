"""Encoders: one function per output format, all taking a Picture and a quality.

Effort (0-9, default 4) is mapped to each encoder's own speed knob:

========  ==========================================  =====================
format    knob                                        mapping
========  ==========================================  =====================
WebP      ``method`` 0 (fast) - 6 (small)             ``min(effort, 6)``
AVIF      ``speed`` 10 (fast) - 0 (small)             ``10 - effort``
PNG       libimagequant speed, oxipng level           see ``PngEffort``
JPEG      (no knob; Huffman tables optimised ≤ 25 MP) -
========  ==========================================  =====================

The default effort gives AVIF libavif's own default speed, 6: on a 1600 px photo it
costs a quarter of the CPU of speed 5 (1.2 s against 5.5 s) for 3 % more bytes.

``mode=preview`` trades bytes for speed: WebP method 0, AVIF speed 10, PNG
quantised at libimagequant's fastest speed and not optimised, JPEG without Huffman
optimisation.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, PngImagePlugin

from feather_core import png_quantize
from feather_core.errors import ProcessingFailed
from feather_core.metadata import insert_jpeg_iptc, png_iptc_text
from feather_core.options import DEFAULT_EFFORT, CompressOptions
from feather_core.picture import Picture
from feather_core.png_quantize import PngEffort

WHITE = (255, 255, 255)


@dataclass(frozen=True)
class EncodeSettings:
    """Per-encode settings derived once from the options."""

    effort: int
    preview: bool
    progressive: bool
    keep_metadata: bool
    # PNG keeps every pixel whatever the quality (no palette quantisation).
    lossless: bool = False

    @classmethod
    def from_options(cls, options: CompressOptions) -> EncodeSettings:
        effort = DEFAULT_EFFORT if options.effort is None else options.effort
        return cls(effort, options.preview, bool(options.progressive),
                   not options.strip_metadata, options.lossless)


def flatten(frame: Image.Image, colour: tuple[int, int, int] = WHITE) -> Image.Image:
    """Composite a frame with alpha onto a solid colour (white by default)."""
    if frame.mode not in ("RGBA", "LA"):
        return frame
    rgba = frame.convert("RGBA")
    base = Image.new("RGBA", rgba.size, colour + (255,))
    base.alpha_composite(rgba)
    return base.convert("RGB" if frame.mode == "RGBA" else "L")


def _metadata(picture: Picture, settings: EncodeSettings, fmt: str) -> dict[str, Any]:
    # Always named, None included: some of Pillow's encoders otherwise fall back to the
    # frame's ``info``, which can still hold a profile that no longer describes the
    # pixels (an RGB profile on a grayscale result, lcms's sRGB after a CMYK conversion).
    extra: dict[str, Any] = {"icc_profile": picture.icc or None}
    if settings.keep_metadata:
        if picture.exif is not None:
            extra["exif"] = picture.exif.tobytes()
        if picture.xmp:
            if fmt == "PNG":
                # Pillow writes no XMP into PNG by itself: XMP's own spec puts it in an
                # uncompressed iTXt chunk with this keyword.
                info = extra.setdefault("pnginfo", PngImagePlugin.PngInfo())
                info.add_itxt("XML:com.adobe.xmp", picture.xmp.decode("utf-8", "replace"))
            else:
                extra["xmp"] = picture.xmp
        if picture.iptc and fmt == "PNG":
            info = extra.setdefault("pnginfo", PngImagePlugin.PngInfo())
            info.add_text(*png_iptc_text(picture.iptc), zip=True)
    return extra


def _save(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt, **params)
    except (OSError, ValueError, TypeError, RuntimeError, MemoryError) as exc:
        # libavif reports with RuntimeError; the others as Pillow's plugins do.
        raise ProcessingFailed(f"The {fmt} encoder failed: {exc}") from exc
    return buffer.getvalue()


# Optimised Huffman tables (and progressive scans) make libjpeg hold every DCT
# coefficient of the image before writing: 3 bytes per pixel at 4:2:0, 150 MB for a
# 50 MP photo, on top of its pixels. Above this size a baseline JPEG with standard
# tables is written instead (5-8 % more bytes), so a worker's peak memory stays near
# the size of the decoded image.
JPEG_BUFFERED_MAX_PIXELS = 25_000_000


def encode_jpeg(picture: Picture, quality: int, settings: EncodeSettings) -> bytes:
    """JPEG, 4:2:0, optimised Huffman tables up to 25 MP; alpha flattened on white."""
    frame = flatten(picture.first)
    buffered = frame.width * frame.height <= JPEG_BUFFERED_MAX_PIXELS
    data = _save(
        frame, "JPEG", quality=quality, subsampling="4:2:0",
        optimize=buffered and not settings.preview,
        progressive=buffered and settings.progressive,
        **_metadata(picture, settings, "JPEG"),
    )
    if settings.keep_metadata and picture.iptc:
        data = insert_jpeg_iptc(data, picture.iptc)
    return data


def encode_png(picture: Picture, quality: int, settings: EncodeSettings) -> bytes:
    """PNG: a dithered palette below quality 100 (unless lossless), then oxipng.

    See ``feather_core.png_quantize``.
    """
    frame = picture.first
    params = _metadata(picture, settings, "PNG")

    def save(image: Image.Image, level: int) -> bytes:
        return _save(image, "PNG", compress_level=level, **params)

    effort = PngEffort.for_job(settings.effort, settings.preview)
    return png_quantize.encode_png(frame, quality, effort, save, lossless=settings.lossless)


def encode_webp(picture: Picture, quality: int, settings: EncodeSettings) -> bytes:
    """Lossy WebP (animated when the picture has several frames)."""
    method = 0 if settings.preview else min(settings.effort, 6)
    params: dict[str, Any] = {"quality": quality, "method": method,
                              **_metadata(picture, settings, "WEBP")}
    frame = picture.first
    if picture.animated:
        params.update(save_all=True, append_images=list(picture.frames[1:]),
                      duration=list(picture.durations), loop=picture.loop,
                      minimize_size=not settings.preview)
    elif frame.mode in ("L", "LA"):
        frame = frame.convert("RGBA" if frame.mode == "LA" else "RGB")
    return _save(frame, "WEBP", **params)


def encode_avif(picture: Picture, quality: int, settings: EncodeSettings) -> bytes:
    """AVIF, 4:2:0 for colour images."""
    speed = 10 if settings.preview else 10 - settings.effort
    frame = picture.first
    if frame.mode in ("L", "LA"):
        frame = frame.convert("RGBA" if frame.mode == "LA" else "RGB")
    return _save(frame, "AVIF", quality=quality, speed=speed, subsampling="4:2:0",
                 **_metadata(picture, settings, "AVIF"))


Encoder = Callable[[Picture, int, EncodeSettings], bytes]

ENCODERS: dict[str, Encoder] = {
    "jpeg": encode_jpeg,
    "png": encode_png,
    "webp": encode_webp,
    "avif": encode_avif,
}

LOSSY = frozenset({"jpeg", "webp", "avif"})
