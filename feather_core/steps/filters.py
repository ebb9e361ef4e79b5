"""Gaussian blur and a mild sharpen."""

from __future__ import annotations

from PIL import ImageFilter

from feather_core.picture import Picture
from feather_core.steps.job import Job

# Close to sharp's default sharpen: a small-radius unsharp mask that lifts
# edges without halos on photos.
_SHARPEN = ImageFilter.UnsharpMask(radius=1.0, percent=120, threshold=2)


def blur_sharpen(picture: Picture, job: Job) -> Picture:
    """Blur with Gaussian sigma ``blur`` (0 does nothing), then sharpen if asked."""
    edits = job.options.edits
    if edits.blur:
        blur = ImageFilter.GaussianBlur(radius=edits.blur)
        picture = picture.map(lambda f: f.filter(blur))
    if edits.sharpen:
        picture = picture.map(lambda f: f.filter(_SHARPEN))
    return picture
