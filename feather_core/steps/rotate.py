"""Rotate by any angle; right angles are lossless transposes."""

from __future__ import annotations

import math

from PIL import Image

from feather_core.picture import Picture
from feather_core.steps.job import Job

_RIGHT_ANGLES = {
    90: Image.Transpose.ROTATE_270,  # the API's degrees are clockwise, Pillow's counter-clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


def rotate(picture: Picture, job: Job) -> Picture:
    """Rotate clockwise by ``rotate`` degrees, growing the canvas to fit.

    Corners uncovered by a free rotation are transparent when the output has an
    alpha channel and white otherwise.
    """
    degrees = job.options.edits.rotate % 360
    if degrees == 0:
        return picture
    if degrees in _RIGHT_ANGLES:
        op = _RIGHT_ANGLES[int(degrees)]
        return picture.map(lambda frame: frame.transpose(op))
    job.claim(rotated_size(picture.size, degrees), len(picture.frames), "The rotated image")
    fill = job.fill

    def turn(frame: Image.Image) -> Image.Image:
        if job.output.alpha and frame.mode in ("RGB", "L"):
            frame = frame.convert("RGBA" if frame.mode == "RGB" else "LA")
        colour: tuple[int, ...] | int = fill
        if frame.mode == "RGB":
            colour = fill[:3]
        elif frame.mode == "L":
            colour = fill[0]
        elif frame.mode == "LA":
            colour = (fill[0], fill[3])
        return frame.rotate(-degrees, resample=Image.Resampling.BICUBIC, expand=True,
                            fillcolor=colour)

    return picture.map(turn)


def rotated_size(size: tuple[int, int], degrees: float) -> tuple[int, int]:
    """The canvas that holds ``size`` turned by ``degrees`` (as Pillow's ``expand``)."""
    width, height = size
    angle = math.radians(degrees)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    return math.ceil(width * cos + height * sin), math.ceil(width * sin + height * cos)
