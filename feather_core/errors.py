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


class OutputTooLarge(TooManyPixels):
    """The output format cannot hold an image of the size the job produces.

    Shares ``TOO_MANY_PIXELS`` with the pixel budget (the API's codes are fixed); the
    message names the format's limit and the ways under it (``maxWidth``/``maxHeight``,
    another ``outputFormat``), and ``details`` says the same per field.
    """

    def __init__(self, format_name: str, width: int, height: int, max_side: int,
                 alternatives: Mapping[str, int | None]) -> None:
        self.format_name = format_name
        self.width = width
        self.height = height
        self.max_side = max_side
        self.alternatives = dict(alternatives)
        field = "maxWidth" if width >= height else "maxHeight"
        # PNG's limit (2^31 - 1) is no news to anyone: named without a number.
        others = ", ".join(
            f"{name} (up to {limit} px a side)" if limit and limit < 1_000_000 else name
            for name, limit in alternatives.items())
        message = (
            f"{format_name.upper()} holds at most {max_side} pixels a side; the output would "
            f"be {width}x{height}. Set {field}={max_side} or less, or choose another "
            f"outputFormat: {others}")
        details = {
            "outputFormat": f"{format_name} holds at most {max_side} px a side; "
                            f"these can hold {width}x{height}: {others}",
            field: f"must be at most {max_side} for {format_name} output",
        }
        super().__init__(message, details)

    def __reduce__(self) -> tuple[type[OutputTooLarge], tuple[object, ...]]:
        # Rebuilt from its fields when it crosses a process boundary (job runners).
        return (type(self), (self.format_name, self.width, self.height, self.max_side,
                             self.alternatives))


class ProcessingTimeout(FeatherError):
    """The deadline passed before the work was done."""

    code = "TIMEOUT"


class ProcessingFailed(FeatherError):
    """An encoder or an image operation failed on an image that decoded."""

    code = "PROCESSING_FAILED"
