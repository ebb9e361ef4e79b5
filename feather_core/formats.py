"""The one table of image formats: what Feather reads, what it writes, and how.

``/api/formats``, the sniffer, the encoders and the ``auto`` rule all read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """An image format as the API names it."""

    name: str
    mime: str
    extension: str
    readable: bool
    writable: bool
    alpha: bool
    animation: bool
    # Pillow's plugin id, used to keep Image.open from trying anything else.
    pillow_id: str | None
    # The widest and tallest image the format can hold (outputs only; None: no limit
    # that matters here, or not an output).
    max_side: int | None = None


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        # libjpeg refuses to write more than 65500 a side.
        Format("jpeg", "image/jpeg", "jpg", True, True, False, False, "JPEG", 65_500),
        # PNG's own limit (2^31 - 1); the pixel budget binds long before.
        Format("png", "image/png", "png", True, True, True, True, "PNG", 2**31 - 1),
        # The WebP bitstream stores each side in 14 bits.
        Format("webp", "image/webp", "webp", True, True, True, True, "WEBP", 16_383),
        # libavif writes up to 65536 a side but reads (and so browsers show) at most
        # 32768: larger files would be written and then refused everywhere.
        Format("avif", "image/avif", "avif", True, True, True, False, "AVIF", 32_768),
        Format("svg", "image/svg+xml", "svg", True, False, True, False, None),
        Format("heic", "image/heic", "heic", True, False, True, False, "HEIF"),
        Format("heif", "image/heif", "heif", True, False, True, False, "HEIF"),
        Format("tiff", "image/tiff", "tiff", True, False, True, False, "TIFF"),
        Format("gif", "image/gif", "gif", True, False, True, True, "GIF"),
        Format("bmp", "image/bmp", "bmp", True, False, True, False, "BMP"),
    )
}

# Names the API accepts as input formats, aliases included, in the documented order.
INPUT_NAMES: tuple[str, ...] = (
    "jpeg", "jpg", "png", "webp", "avif", "svg", "heic", "heif", "tiff", "gif", "bmp",
)
OUTPUT_NAMES: tuple[str, ...] = ("jpeg", "png", "webp", "avif")

ALIASES = {"jpg": "jpeg", "tif": "tiff"}


def output_format(name: str) -> Format:
    """The writable format called ``name`` (aliases such as ``jpg`` allowed)."""
    fmt = FORMATS[ALIASES.get(name, name)]
    if not fmt.writable:
        raise KeyError(name)
    return fmt


def can_hold(fmt: Format, width: int, height: int) -> bool:
    """Whether ``fmt`` can store an image of ``width`` x ``height`` pixels."""
    return fmt.max_side is None or max(width, height) <= fmt.max_side
