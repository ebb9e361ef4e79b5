"""Brightness, saturation, contrast and grayscale, leaving alpha untouched."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image, ImageEnhance

from feather_core.picture import Picture
from feather_core.steps.job import Job


def _split_alpha(frame: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    if frame.mode in ("RGBA", "LA"):
        return frame.convert("RGB" if frame.mode == "RGBA" else "L"), frame.getchannel("A")
    return frame, None


def _join_alpha(colour: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is None:
        return colour
    out = colour.convert("RGBA" if colour.mode == "RGB" else "LA")
    out.putalpha(alpha)
    return out


def adjust_colour(picture: Picture, job: Job) -> Picture:
    """Multiply brightness, saturation and contrast, then drop to grayscale if asked.

    ImageEnhance blends whole images, alpha included, so alpha is set aside first.
    A grayscale result carries no ICC profile: an RGB profile would not describe it.
    """
    edits = job.options.edits
    asked: list[tuple[type[ImageEnhance._Enhance], float | None]] = [
        (ImageEnhance.Brightness, edits.brightness),
        (ImageEnhance.Color, edits.saturation),
        (ImageEnhance.Contrast, edits.contrast),
    ]
    factors = [(enhancer, v) for enhancer, v in asked if v is not None and v != 1]
    if not factors and not edits.grayscale:
        return picture

    def adjust(frame: Image.Image) -> Image.Image:
        colour, alpha = _split_alpha(frame)
        for enhancer, value in factors:
            if enhancer is ImageEnhance.Color and colour.mode == "L":
                continue
            colour = enhancer(colour).enhance(value)  # type: ignore[call-arg]
        if edits.grayscale and colour.mode != "L":
            colour = colour.convert("L")
        return _join_alpha(colour, alpha)

    adjusted = picture.map(adjust)
    if edits.grayscale:
        adjusted = replace(adjusted, icc=None)
    return adjusted
