"""Small helpers shared by the tests: decoding answers and comparing images."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image


def open_image(data: bytes) -> Image.Image:
    """Decode bytes (HEIF included) and load them, failing the test if they do not decode."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def rgb_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0-255, after resizing b to a's size."""
    if a.size != b.size:
        b = b.resize(a.size, Image.Resampling.LANCZOS)
    return float(np.mean(np.abs(rgb_array(a) - rgb_array(b))))


def assert_image_similar(a: Image.Image, b: Image.Image, max_mean_diff: float = 6.0) -> None:
    """Fail unless ``a`` and ``b`` look alike (Pillow's own test helper does the same)."""
    diff = mean_abs_diff(a, b)
    assert diff <= max_mean_diff, f"images differ: mean abs diff {diff:.2f} > {max_mean_diff}"


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Global structural similarity of the luma of two images of the same size."""
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L").resize(a.size, Image.Resampling.LANCZOS), dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = float(((x - mx) * (y - my)).mean())
    return ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def pixel(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    value = image.convert("RGBA").getpixel((x, y))
    assert isinstance(value, tuple)
    return value


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(math.isclose(p, q, abs_tol=tolerance) for p, q in zip(a, b, strict=False))
