"""Crop to the asked rectangle, given on the upright source."""

from __future__ import annotations

from feather_core.errors import InvalidOptions
from feather_core.picture import Picture
from feather_core.steps.job import Job


def crop(picture: Picture, job: Job) -> Picture:
    """Cut the rectangle out; one partly outside the image is clipped to it."""
    rect = job.options.edits.crop
    if rect is None:
        return picture
    width, height = picture.size
    if rect.x >= width or rect.y >= height:
        raise InvalidOptions(
            "The crop rectangle lies outside the image",
            {"cropX": f"must be less than the image width ({width})",
             "cropY": f"must be less than the image height ({height})"},
        )
    box = (rect.x, rect.y, min(width, rect.x + rect.width), min(height, rect.y + rect.height))
    return picture.map(lambda frame: frame.crop(box))
