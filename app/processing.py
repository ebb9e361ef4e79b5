"""Calling the core with the service's limits; shared by every endpoint that compresses."""

from __future__ import annotations

from flask import current_app

from app.settings import Settings
from feather_core import CompressOptions, CompressResult, Limits, compress


def limits_for(settings: Settings) -> Limits:
    return Limits(max_pixels=settings.max_pixels, max_frames=settings.max_frames,
                  timeout=settings.request_timeout)


def run_compress(data: bytes, options: CompressOptions) -> CompressResult:
    """Compress with the configured pixel, frame and time limits."""
    settings: Settings = current_app.config["FEATHER"]
    return compress(data, options, limits_for(settings))
