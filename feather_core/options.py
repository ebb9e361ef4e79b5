"""Frozen option records. Building one validates it; nothing downstream re-checks.

Field names in error details are the API's names (``quality``, ``cropWidth``...), so
the HTTP layer and the command line report the same words. The ranges and defaults
below are written once: the server's field schema, its OpenAPI document, the command
line's options and the upload form's limits are all made from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from feather_core.errors import InvalidOptions
from feather_core.formats import OUTPUT_NAMES


@dataclass(frozen=True)
class Range:
    """An inclusive range of allowed values."""

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    @property
    def message(self) -> str:
        return f"must be between {self.low:g} and {self.high:g}"


OUTPUT_CHOICES = ("auto", *OUTPUT_NAMES)
MODES = ("final", "preview")
POSITIONS = ("TL", "TC", "TR", "ML", "MC", "MR", "BL", "BC", "BR")

QUALITY = Range(1, 100)
EFFORT = Range(0, 9)
ROTATE = Range(-360, 360)
BRIGHTNESS = Range(0.1, 3)
SATURATION = Range(0, 3)
CONTRAST = Range(0.1, 3)
BLUR = Range(0, 10)
WATERMARK_SCALE = Range(5, 50)
WATERMARK_OPACITY = Range(0, 100)

DEFAULT_QUALITY = 80
DEFAULT_EFFORT = 4
DEFAULT_WATERMARK_SCALE = 20.0
DEFAULT_WATERMARK_OPACITY = 80.0
DEFAULT_WATERMARK_POSITION = "BR"

# ``quality=auto`` levels: the SSIMULACRA2 floor each one keeps (feather_core.visual_quality).
LEVELS: dict[str, float] = {"high": 80.0, "good": 70.0, "eco": 60.0}
DEFAULT_LEVEL = "good"
# The words the API and CLI take for ``quality`` besides the numbers 1-100.
AUTO_NAMES: dict[str, str] = {"auto": DEFAULT_LEVEL, **{f"auto:{name}": name for name in LEVELS}}


class _Checker:
    """Collects every bad field of one record, then raises once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def range(self, name: str, value: float | None, bounds: Range) -> None:
        if value is None:
            return
        if isinstance(value, float) and not math.isfinite(value):
            self.errors[name] = "must be a finite number"
        elif value not in bounds:
            self.errors[name] = bounds.message

    def positive(self, name: str, value: int | None) -> None:
        if value is not None and value < 1:
            self.errors[name] = "must be a positive integer"

    def choice(self, name: str, value: str, choices: tuple[str, ...]) -> None:
        if value not in choices:
            self.errors[name] = "must be one of " + ", ".join(choices)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidOptions("Invalid options", self.errors)


@dataclass(frozen=True)
class Crop:
    """A rectangle on the oriented source, in pixels."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        check = _Checker()
        if self.x < 0:
            check.errors["cropX"] = "must be 0 or more"
        if self.y < 0:
            check.errors["cropY"] = "must be 0 or more"
        check.positive("cropWidth", self.width)
        check.positive("cropHeight", self.height)
        check.raise_if_any()


@dataclass(frozen=True)
class Edits:
    """Edits applied after orientation and crop, in the documented order."""

    crop: Crop | None = None
    rotate: float = 0.0
    flip: bool = False
    flop: bool = False
    brightness: float | None = None
    saturation: float | None = None
    contrast: float | None = None
    grayscale: bool = False
    blur: float | None = None
    sharpen: bool = False

    def __post_init__(self) -> None:
        check = _Checker()
        check.range("rotate", self.rotate, ROTATE)
        check.range("brightness", self.brightness, BRIGHTNESS)
        check.range("saturation", self.saturation, SATURATION)
        check.range("contrast", self.contrast, CONTRAST)
        check.range("blur", self.blur, BLUR)
        check.raise_if_any()

    @property
    def any(self) -> bool:
        """Whether any edit changes pixels."""
        return self != Edits()


@dataclass(frozen=True)
class Watermark:
    """An overlay image, placed after resize and before encode."""

    image: bytes
    scale: float = DEFAULT_WATERMARK_SCALE  # percent of the base width
    opacity: float = DEFAULT_WATERMARK_OPACITY  # percent
    position: str = DEFAULT_WATERMARK_POSITION

    def __post_init__(self) -> None:
        check = _Checker()
        check.range("watermarkScale", self.scale, WATERMARK_SCALE)
        check.range("watermarkOpacity", self.opacity, WATERMARK_OPACITY)
        check.choice("watermarkPosition", self.position, POSITIONS)
        check.raise_if_any()


@dataclass(frozen=True)
class Limits:
    """What one job may cost. The caller (server or CLI) decides the numbers."""

    max_pixels: int = 50_000_000
    max_frames: int = 1_000
    # Seconds of wall time; None means no deadline.
    timeout: float | None = None


@dataclass(frozen=True)
class CompressOptions:
    """Everything one compression needs besides the input bytes."""

    output_format: str = "auto"
    quality: int = DEFAULT_QUALITY
    max_width: int | None = None
    max_height: int | None = None
    strip_metadata: bool = True
    target_bytes: int | None = None
    mode: str = "final"
    progressive: bool | None = None
    effort: int | None = None
    # Keep every pixel: PNG is never palette-quantised, whatever the quality (the
    # FluxImage document's PNG, "lossless compression regardless of this value").
    lossless: bool = False
    edits: Edits = field(default_factory=Edits)
    watermark: Watermark | None = None
    # ``quality=auto``: a level of ``visual_quality.LEVELS`` ("high", "good", "eco"), or
    # None for the fixed ``quality``. ``quality_from_text`` reads the API's spelling.
    quality_level: str | None = None
    # Image MIME types the client shows (parsed from a browser's Accept header), for
    # ``outputFormat=auto``; None means any (``*/*``, curl).
    accept: frozenset[str] | None = None

    def __post_init__(self) -> None:
        check = _Checker()
        check.choice("outputFormat", self.output_format, OUTPUT_CHOICES)
        check.range("quality", self.quality, QUALITY)
        check.positive("maxWidth", self.max_width)
        check.positive("maxHeight", self.max_height)
        if self.target_bytes is not None and self.target_bytes < 1:
            check.errors["targetMB"] = "must be greater than 0"
        check.choice("mode", self.mode, MODES)
        check.range("effort", self.effort, EFFORT)
        if self.quality_level is not None:
            check.choice("quality", self.quality_level, tuple(LEVELS))
        check.raise_if_any()

    @property
    def preview(self) -> bool:
        return self.mode == "preview"


QUALITY_CHOICES = ("1-100", *AUTO_NAMES)


def quality_from_text(value: str) -> tuple[int, str | None]:
    """``quality`` as the API and CLI spell it: a number 1-100, ``auto`` or ``auto:LEVEL``.

    Returns the ``quality`` and ``quality_level`` fields of ``CompressOptions``: with a
    level the number is the default quality, used where no search runs. Raises
    ``InvalidOptions`` (field ``quality``) for anything else.
    """
    text = value.strip().lower()
    if text in AUTO_NAMES:
        return DEFAULT_QUALITY, AUTO_NAMES[text]
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= 100:
        raise InvalidOptions("Invalid options", {
            "quality": "must be a number between 1 and 100, or " + ", ".join(AUTO_NAMES)})
    return number, None
