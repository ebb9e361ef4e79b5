"""What every step may read about the job at hand."""

from __future__ import annotations

from dataclasses import dataclass, field

from feather_core.errors import TooManyPixels
from feather_core.formats import Format
from feather_core.options import CompressOptions, Limits


@dataclass(frozen=True)
class Job:
    """The parsed options, the output format chosen for them, and the job's limits."""

    options: CompressOptions
    output: Format
    limits: Limits = field(default_factory=Limits)

    @property
    def fill(self) -> tuple[int, int, int, int]:
        """Colour for uncovered areas: transparent where the output has alpha, else white."""
        return (0, 0, 0, 0) if self.output.alpha else (255, 255, 255, 255)

    def claim(self, size: tuple[int, int], frames: int = 1, what: str = "The result") -> None:
        """Refuse, before it is allocated, an image the pixel budget cannot hold.

        Steps that make pixels (a rotation's larger canvas, a scaled watermark) call this
        with the size they are about to allocate.
        """
        width, height = size
        if width * height * frames > self.limits.max_pixels:
            raise TooManyPixels(
                f"{what} would have {width:,} × {height:,} pixels"
                + (f" in each of {frames} frames" if frames > 1 else "")
                + f", more than the {self.limits.max_pixels:,} allowed")
