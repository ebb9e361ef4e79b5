"""What a JPEG input says about the size our encoder would give it, read from its header.

The quantisation tables tell the quality the file was saved at (libjpeg scales one
standard table by a percentage); the file's own size at that quality anchors the
size model of the target-size search, so the search can start near its answer, or
skip a full-size encode it can already tell would not fit.
"""

from __future__ import annotations

import statistics

from PIL import Image, JpegImagePlugin

# The standard luminance table of the JPEG specification (Annex K), in natural order.
_STANDARD_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
# Our encoder uses 4:2:0: what our bytes are to a file's own at the same quality, by
# its chroma subsampling (Pillow's get_sampling: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0),
# measured on camera and phone photos (optimised Huffman tables roughly cancel the
# finer detail our Lanczos-free re-encode keeps).
_SAMPLING_FACTOR = {0: 0.78, 1: 0.9, 2: 1.0}


def estimate_quality(image: Image.Image) -> int | None:
    """The libjpeg quality (1-100) a JPEG was most likely saved at, or None."""
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    ratios = [100 * int(q) / s for q, s in zip(tables[0], _STANDARD_LUMA, strict=True)]
    scale: float = statistics.median(ratios)
    if scale <= 0:
        return None
    quality = 5000 / scale if scale > 100 else (200 - scale) / 2
    return int(max(1, min(100, round(quality))))


def size_anchor(image: Image.Image, compressed_bytes: int) -> tuple[int, float] | None:
    """(quality, bytes our encoder would likely need at it) for this JPEG, or None."""
    quality = estimate_quality(image)
    if quality is None:
        return None
    try:
        sampling = JpegImagePlugin.get_sampling(image)
    except Exception:  # noqa: BLE001 - unusual layouts simply give no estimate
        return None
    factor = _SAMPLING_FACTOR.get(sampling)
    if factor is None:
        return None
    return quality, compressed_bytes * factor
