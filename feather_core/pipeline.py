"""The processing pipeline: the named steps, in the documented order.

decode → EXIF orientation → crop → rotate → flip/flop →
brightness/saturation/contrast/grayscale → blur/sharpen → resize → watermark → encode

Decoding and encoding are not steps: ``feather_core.compress`` does them around
this list, because the target-size search encodes many times from one result.
"""

from __future__ import annotations

from collections.abc import Callable

from feather_core.deadline import Deadline
from feather_core.picture import Picture
from feather_core.steps.colour import adjust_colour
from feather_core.steps.crop import crop
from feather_core.steps.filters import blur_sharpen
from feather_core.steps.flip import flip_flop
from feather_core.steps.job import Job
from feather_core.steps.orientation import apply_orientation
from feather_core.steps.resize import resize
from feather_core.steps.rotate import rotate
from feather_core.steps.watermark import watermark

Step = Callable[[Picture, Job], Picture]

STEPS: tuple[tuple[str, Step], ...] = (
    ("orientation", apply_orientation),
    ("crop", crop),
    ("rotate", rotate),
    ("flip", flip_flop),
    ("colour", adjust_colour),
    ("filters", blur_sharpen),
    ("resize", resize),
    ("watermark", watermark),
)


def run(picture: Picture, job: Job, deadline: Deadline) -> Picture:
    """Apply every step in order, checking the deadline between them."""
    for _name, step in STEPS:
        deadline.check()
        picture = step(picture, job)
    return picture
