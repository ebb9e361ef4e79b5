"""Overlay a watermark image, after resize and before encode."""

from __future__ import annotations

import functools
import io
import math

from PIL import Image, UnidentifiedImageError

from feather_core.errors import InvalidOptions
from feather_core.options import Watermark
from feather_core.picture import Picture
from feather_core.steps.job import Job

# Distance from the edges as a share of the shorter side, so it looks the same at any size.
MARGIN = 0.03
_MAX_WATERMARK_PIXELS = 25_000_000


def load_mark(mark: Watermark) -> Image.Image:
    """Decode the watermark file to RGBA, refusing anything that is not a small image.

    Every image of a batch carries the same watermark bytes, so the decoded mark is kept
    for the next call; callers must treat it as read-only (``watermark`` only resizes it).
    """
    return _decoded_mark(mark.image)


@functools.lru_cache(maxsize=8)
def _decoded_mark(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG", "WEBP", "JPEG", "GIF"])
        if image.width * image.height > _MAX_WATERMARK_PIXELS:
            raise InvalidOptions("The watermark image is too large",
                                 {"watermarkFile": "has too many pixels"})
        return image.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidOptions("The watermark is not a valid image",
                             {"watermarkFile": "must be a PNG, WebP, JPEG or GIF image"}) from exc


def place(base: tuple[int, int], mark: tuple[int, int], position: str) -> tuple[int, int]:
    """Top-left corner of ``mark`` on ``base`` for a TL..BR position, with the margin."""
    width, height = base
    mw, mh = mark
    margin = round(MARGIN * min(width, height))
    column, row = position[1], position[0]
    x = {"L": margin, "C": (width - mw) // 2, "R": width - mw - margin}[column]
    y = {"T": margin, "M": (height - mh) // 2, "B": height - mh - margin}[row]
    return x, y


def watermark(picture: Picture, job: Job) -> Picture:
    """Scale the mark to ``scale`` % of the base width and composite it at ``opacity``.

    Pixels are counted before they are made: the mark as decoded, and the mark as
    scaled. Only the rows of the scaled mark that land on the image are made, so a thin,
    tall mark (1 × 400 at 50 % of a wide photo) cannot grow into millions of rows.
    """
    mark_options = job.options.watermark
    if mark_options is None:
        return picture
    width, height = picture.size
    source = load_mark(mark_options)
    job.claim(source.size, what="The watermark")
    mark_width = max(1, round(width * mark_options.scale / 100))
    mark_height = max(1, round(source.height * mark_width / source.width))
    if mark_height > height:
        # Keep the source rows that cover the image's height (plus one for the filter).
        rows = min(source.height, math.ceil(height * source.height / mark_height) + 1)
        source = source.crop((0, 0, source.width, rows))
        mark_height = max(1, min(height, round(rows * mark_width / source.width)))
    job.claim((mark_width, mark_height), what="The scaled watermark")
    mark = source.resize((mark_width, mark_height), Image.Resampling.LANCZOS)
    if mark_options.opacity < 100:
        alpha = mark.getchannel("A").point(lambda a: round(a * mark_options.opacity / 100))
        mark.putalpha(alpha)
    corner = place(picture.size, mark.size, mark_options.position)

    def overlay(frame: Image.Image) -> Image.Image:
        mode = frame.mode
        base = frame.convert("RGBA")
        base.alpha_composite(mark, dest=(max(0, corner[0]), max(0, corner[1])))
        return base if mode in ("RGBA", "LA") else base.convert("RGB" if mode == "RGB" else "L")

    return picture.map(overlay)
