"""What an image file is, read from its headers: the facts ``feather info`` prints.

Nothing is decoded beyond what the header and the frame count need, so the pixel
budget of ``Limits`` applies exactly as it does before compressing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageCms

from feather_core.decode import open_source
from feather_core.errors import TooManyPixels
from feather_core.formats import FORMATS
from feather_core.options import Limits


@dataclass(frozen=True)
class ImageInfo:
    """Header facts of one image, as a user asks about them."""

    format: str
    mime: str
    bytes: int
    width: int  # after EXIF orientation: what a viewer shows
    height: int
    stored_width: int
    stored_height: int
    mode: str
    orientation: int
    has_alpha: bool
    icc_profile: str | None  # the profile's description, "" when it has none
    icc_bytes: int
    frames: int
    loop: int | None
    duration_ms: int | None
    has_exif: bool
    has_xmp: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def animated(self) -> bool:
        return self.frames > 1


def inspect_image(data: bytes, limits: Limits | None = None) -> ImageInfo:
    """Sniff and open ``data`` headers-only, and describe it.

    Raises the same ``UnsupportedFormat``, ``InvalidImage`` and ``TooManyPixels``
    as ``compress`` would for the same bytes and limits.
    """
    source = open_source(data, limits or Limits())
    image = source.image
    icc = image.info.get("icc_profile") or None
    width, height = source.size
    loop, duration = _animation_timing(source.image, source.frame_count)
    return ImageInfo(
        format=source.format,
        mime=FORMATS[source.format].mime,
        bytes=len(data),
        width=width,
        height=height,
        stored_width=source.stored_size[0],
        stored_height=source.stored_size[1],
        mode=image.mode,
        orientation=source.orientation,
        has_alpha=source.has_alpha,
        icc_profile=_profile_name(icc) if icc else None,
        icc_bytes=len(icc) if icc else 0,
        frames=source.frame_count,
        loop=loop,
        duration_ms=duration,
        has_exif=_has_exif(image),
        has_xmp=bool(image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")),
    )


def _profile_name(icc: bytes) -> str:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.getProfileDescription(profile).strip()
    except (ImageCms.PyCMSError, OSError, ValueError):
        return ""  # present but unreadable: still worth reporting as present


def _has_exif(image: Image.Image) -> bool:
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF is reported as absent, not as a failure
        return False
    return bool(exif)


def _animation_timing(image: Image.Image, frames: int) -> tuple[int | None, int | None]:
    if frames < 2:
        return None, None
    total = 0
    try:
        for index in range(frames):
            image.seek(index)
            if "duration" not in image.info:
                image.load()  # WebP reports a frame's duration only once it is decoded
            total += int(image.info.get("duration", 0) or 0)
        image.seek(0)
        loop = int(image.info.get("loop", 0) or 0)
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(str(exc)) from exc
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - a broken frame (any exception) leaves the timing unknown
        return None, None
    return loop, total


__all__ = ["ImageInfo", "inspect_image"]
