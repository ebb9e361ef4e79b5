"""What every step may read about the job at hand."""

from __future__ import annotations

from dataclasses import dataclass

from feather_core.formats import Format
from feather_core.options import CompressOptions


@dataclass(frozen=True)
class Job:
    """The parsed options and the output format chosen for them."""

    options: CompressOptions
    output: Format

    @property
    def fill(self) -> tuple[int, int, int, int]:
        """Colour for uncovered areas: transparent where the output has alpha, else white."""
        return (0, 0, 0, 0) if self.output.alpha else (255, 255, 255, 255)
