"""Shrink to fit maxWidth × maxHeight, never enlarging, keeping the aspect ratio."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image

from feather_core.lanczos import lanczos_resize
from feather_core.picture import Picture
from feather_core.steps.job import Job


def fit_within(
    size: tuple[int, int], max_width: int | None, max_height: int | None
) -> tuple[int, int]:
    """The largest size with ``size``'s aspect ratio inside the box, never larger than ``size``."""
    width, height = size
    scale = 1.0
    if max_width and width > max_width:
        scale = min(scale, max_width / width)
    if max_height and height > max_height:
        scale = min(scale, max_height / height)
    if scale >= 1.0:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_frame(frame: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Lanczos resample to ``size`` (box-reduced first for big reductions, alpha premultiplied)."""
    return lanczos_resize(frame, size)


def resize(picture: Picture, job: Job) -> Picture:
    """Apply maxWidth/maxHeight to the full-size dimensions."""
    target = fit_within(picture.logical_size, job.options.max_width, job.options.max_height)
    # A reduced-scale JPEG decode may already have the target size: resized all the same.
    shrunk = target != picture.logical_size
    if target != picture.size:
        picture = picture.map(lambda frame: resize_frame(frame, target))
    return replace(picture, nominal_size=None, resized=picture.resized or shrunk)
