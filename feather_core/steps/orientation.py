"""Apply the EXIF orientation so every later step works on the upright image."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image

from feather_core.picture import Picture
from feather_core.steps.job import Job

_TRANSPOSE: dict[int, tuple[Image.Transpose, ...]] = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def apply_orientation(picture: Picture, job: Job) -> Picture:
    """Turn the pixels upright; the output then carries orientation 1 (or none)."""
    ops = _TRANSPOSE.get(picture.orientation, ())
    if not ops:
        return picture

    def upright(frame: Image.Image) -> Image.Image:
        for op in ops:
            frame = frame.transpose(op)
        return frame

    return replace(picture.map(upright), orientation=1)
