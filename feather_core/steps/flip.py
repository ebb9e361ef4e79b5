"""Mirror vertically (flip) and horizontally (flop)."""

from __future__ import annotations

from PIL import Image

from feather_core.picture import Picture
from feather_core.steps.job import Job


def flip_flop(picture: Picture, job: Job) -> Picture:
    """``flip`` mirrors top to bottom, ``flop`` left to right."""
    edits = job.options.edits
    if edits.flip:
        picture = picture.map(lambda f: f.transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    if edits.flop:
        picture = picture.map(lambda f: f.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    return picture
