"""Exceptions of the image library.

Each carries a stable ``code`` and a public message. They know nothing of HTTP:
the web layer maps codes to statuses in one place (``app/errors.py``).
"""

from __future__ import annotations

from collections.abc import Mapping


class FeatherError(Exception):
    """Base class: a failure with a stable, public code."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, details: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, str] = dict(details or {})


class InvalidOptions(FeatherError):
    """One or more options are missing or out of range; ``details`` names each field."""

    code = "INVALID_INPUT"


class UnsupportedFormat(FeatherError):
    """The bytes are a real format, but not one Feather accepts."""

    code = "UNSUPPORTED_FORMAT"


class InvalidImage(FeatherError):
    """The bytes are not a decodable image."""

    code = "INVALID_IMAGE"


class TooManyPixels(FeatherError):
    """The declared dimensions (all frames counted) exceed the pixel budget."""

    code = "TOO_MANY_PIXELS"


class ProcessingTimeout(FeatherError):
    """The deadline passed before the work was done."""

    code = "TIMEOUT"


class ProcessingFailed(FeatherError):
    """An encoder or an image operation failed on an image that decoded."""

    code = "PROCESSING_FAILED"
