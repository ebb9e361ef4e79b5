"""The decoded image as the pipeline sees it: frames plus what must survive encoding."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image


@dataclass(frozen=True)
class Picture:
    """One or more frames of the same size, with timing and colour metadata.

    ``exif``, ``xmp`` and ``iptc`` are only carried when metadata is kept; ``icc`` always is,
    because dropping a profile changes colours.
    """

    frames: tuple[Image.Image, ...]
    durations: tuple[int, ...] = ()
    # How many times the animation plays; 0 is forever (WebP's and APNG's count).
    loop: int = 0
    # EXIF orientation (1-8) still to apply; the orientation step sets it to 1.
    orientation: int = 1
    icc: bytes | None = None
    exif: Image.Exif | None = None
    xmp: bytes | None = None
    # IPTC-IIM records (the payload of Photoshop's resource 0x0404), kept with the rest.
    iptc: bytes | None = None
    # The upright size these frames stand for when they were decoded at a reduced
    # JPEG scale; resize decisions use it so dimensions match a full-size decode.
    nominal_size: tuple[int, int] | None = None
    # Set by the resize step when maxWidth/maxHeight made the picture smaller.
    resized: bool = False

    @property
    def first(self) -> Image.Image:
        return self.frames[0]

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size

    @property
    def logical_size(self) -> tuple[int, int]:
        return self.nominal_size or self.frames[0].size

    @property
    def animated(self) -> bool:
        return len(self.frames) > 1

    @property
    def has_alpha(self) -> bool:
        return self.frames[0].mode in ("RGBA", "LA")

    def map(self, step: object) -> Picture:
        """A copy with ``step`` applied to every frame (``step`` takes and returns an image)."""
        assert callable(step)
        return replace(self, frames=tuple(step(f) for f in self.frames))

    def with_frames(self, frames: tuple[Image.Image, ...]) -> Picture:
        return replace(self, frames=frames)
