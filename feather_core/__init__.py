"""Feather's image library: decode, edit, resize, watermark, encode, fit to a size.

Pure Pillow (plus pillow-heif and cairosvg for their formats); no web framework,
no environment variables. Entry point: ``compress(data, options, limits)``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from feather_core.compress import CompressResult, compress
from feather_core.errors import (
    FeatherError,
    InvalidImage,
    InvalidOptions,
    OutputTooLarge,
    ProcessingFailed,
    ProcessingTimeout,
    TooManyPixels,
    UnsupportedFormat,
)
from feather_core.options import CompressOptions, Crop, Edits, Limits, Watermark

try:
    __version__ = version("feather")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "1.0.0"

__all__ = [
    "CompressOptions", "CompressResult", "Crop", "Edits", "FeatherError", "InvalidImage",
    "InvalidOptions", "Limits", "OutputTooLarge", "ProcessingFailed", "ProcessingTimeout",
    "TooManyPixels", "UnsupportedFormat", "Watermark", "__version__", "compress",
]
