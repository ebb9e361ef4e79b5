"""Structural similarity (windowed SSIM on luma), for judging the target-size search."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

WINDOW = 8


def _box_mean(values: np.ndarray) -> np.ndarray:
    # Mean over every WINDOW x WINDOW window, by summed-area table.
    table = values.cumsum(0).cumsum(1)
    table = np.pad(table, ((1, 0), (1, 0)))
    w = WINDOW
    sums = table[w:, w:] - table[:-w, w:] - table[w:, :-w] + table[:-w, :-w]
    return sums / (w * w)


def ssim(reference: Image.Image, output: Image.Image) -> float:
    """Mean SSIM of ``output`` against ``reference`` resized (Lanczos) to the output's size."""
    if reference.size != output.size:
        reference = reference.resize(output.size, Image.Resampling.LANCZOS)
    x = np.asarray(reference.convert("L"), dtype=np.float64)
    y = np.asarray(output.convert("L"), dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box_mean(x), _box_mean(y)
    vx = _box_mean(x * x) - mx * mx
    vy = _box_mean(y * y) - my * my
    cov = _box_mean(x * y) - mx * my
    score = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(score.mean())


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("RGB")
