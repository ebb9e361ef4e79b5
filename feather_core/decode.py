"""Decoding: sniff, open with only the expected plugin, check the pixel budget, load.

Opening reads headers only, so the pixel budget is enforced before any pixel is
decoded. Loading normalises every mode to one of L, LA, RGB, RGBA.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, UnidentifiedImageError

from feather_core import svg
from feather_core.deadline import Deadline
from feather_core.errors import InvalidImage, TooManyPixels
from feather_core.formats import FORMATS
from feather_core.frames import gif_frames
from feather_core.options import Limits
from feather_core.picture import Picture
from feather_core.sniff import declared_size, sniff_format

# Pillow's own bomb check raises only at twice its limit and warns below that; the
# budget here is ours, checked from the header, so its warning is noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

_ORIENTATION_TAG = 0x0112

_registered_heif = False


def _register_heif() -> None:
    # Registered lazily so importing feather_core stays cheap for the CLI's --help.
    global _registered_heif
    if not _registered_heif:
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False)
        _registered_heif = True


@dataclass(frozen=True)
class Source:
    """An opened image whose header has been read and checked, not yet decoded."""

    format: str
    image: Image.Image
    frame_count: int
    orientation: int

    @property
    def stored_size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def size(self) -> tuple[int, int]:
        """Width and height after EXIF orientation."""
        w, h = self.image.size
        return (h, w) if self.orientation in (5, 6, 7, 8) else (w, h)

    @property
    def animated(self) -> bool:
        return self.frame_count > 1

    @property
    def has_alpha(self) -> bool:
        im = self.image
        return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def open_source(data: bytes, limits: Limits, deadline: Deadline | None = None) -> Source:
    """Sniff ``data`` and open it with the plugin of its format, headers only.

    Raises ``UnsupportedFormat``, ``InvalidImage`` or ``TooManyPixels``.
    """
    fmt = sniff_format(data)
    declared = declared_size(fmt, data)
    if declared is not None and declared[0] * declared[1] > limits.max_pixels:
        raise TooManyPixels(_too_many(limits))
    # A GIF's frames are counted (and capped) from its blocks, so Pillow need not walk
    # them again below.
    counted = gif_frames(data, limits.max_frames, limits.max_pixels) if fmt == "gif" else None
    pillow_id: str | None = "PNG"
    if fmt == "svg":
        data = svg.rasterize(data, limits, deadline)
    else:
        pillow_id = FORMATS[fmt].pillow_id
        if pillow_id == "HEIF":
            _register_heif()
    assert pillow_id is not None
    try:
        image = Image.open(io.BytesIO(data), formats=[pillow_id])
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(_too_many(limits)) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImage(f"The file could not be decoded as {fmt.upper()}") from exc
    except Exception as exc:
        raise InvalidImage(f"The file could not be decoded as {fmt.upper()}") from exc

    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidImage("The image has no pixels")
    if width * height > limits.max_pixels:
        raise TooManyPixels(_too_many(limits))
    frames = counted or _count_frames(image, fmt, limits)
    if width * height * frames > limits.max_pixels:
        raise TooManyPixels(_too_many(limits))
    return Source(fmt, image, frames, _orientation(image))


def _too_many(limits: Limits) -> str:
    return f"The image has more than {limits.max_pixels:,} pixels (all frames counted)"


def _count_frames(image: Image.Image, fmt: str, limits: Limits) -> int:
    # Multi-page TIFFs (and HEIF image collections) are not animations: only the
    # first page is decoded, so the other pages cost nothing and are not counted.
    if not FORMATS[fmt].animation:
        return 1
    try:
        # Both read ahead into the stream, where a broken frame header raises anything
        # from struct.error to EOFError (found by fuzzing).
        if not getattr(image, "is_animated", False):
            return 1
        frames = int(getattr(image, "n_frames", 1))
    except Exception as exc:
        raise InvalidImage("The animation could not be read") from exc
    if frames > limits.max_frames:
        raise TooManyPixels(f"The animation has more than {limits.max_frames:,} frames")
    return frames


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not sink an image that decodes
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def decode(
    source: Source,
    *,
    keep_animation: bool,
    keep_metadata: bool,
    shrink_to: tuple[int, int] | None = None,
) -> Picture:
    """Decode the pixels of ``source`` into a ``Picture``.

    ``shrink_to`` (oriented width, height) lets JPEG decode at a reduced DCT scale
    that is still at least that large, which is most of the cost saved on big photos.
    """
    image = source.image
    # The upright full size; resize decisions use it, so a reduced-scale decode (whose
    # sizes are rounded up per DCT scale) gives exactly the dimensions of a full one.
    nominal_size: tuple[int, int] | None = None
    if shrink_to and source.format == "jpeg" and source.frame_count == 1:
        full_size = source.size
        w, h = shrink_to
        if source.orientation in (5, 6, 7, 8):
            w, h = h, w
        image.draft(image.mode, (w, h))
        if source.size != full_size:
            nominal_size = full_size

    icc = image.info.get("icc_profile") or None
    exif = xmp = None
    if keep_metadata:
        exif = _exif_without_orientation(image)
        xmp = _xmp_without_orientation(image.info.get("xmp"))
    try:
        if keep_animation and source.animated:
            frames, durations = _load_frames(image)
            loop = int(image.info.get("loop", 0) or 0)
        else:
            image.load()
            frames, durations, loop = (image,), (), 0
        normalised = [_normalise(f, icc) for f in frames]
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        raise InvalidImage(f"The {source.format.upper()} data is broken or truncated") from exc
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(str(exc)) from exc
    frames_out = tuple(im for im, _ in normalised)
    icc_out = normalised[0][1]
    return Picture(
        frames=frames_out,
        durations=durations,
        loop=loop,
        orientation=source.orientation,
        icc=icc_out,
        exif=exif,
        xmp=xmp,
        nominal_size=nominal_size,
    )


def _load_frames(image: Image.Image) -> tuple[tuple[Image.Image, ...], tuple[int, ...]]:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        image.load()
        frame = image.convert("RGBA")
        frames.append(frame)
        durations.append(int(image.info.get("duration", 100) or 100))
    return _same_size(frames), tuple(durations)


def _same_size(frames: list[Image.Image]) -> tuple[Image.Image, ...]:
    # A GIF frame may reach past the logical screen, and Pillow then grows the image
    # from that frame on; an animation's frames must share one canvas, the largest.
    width = max(f.width for f in frames)
    height = max(f.height for f in frames)
    padded = []
    for frame in frames:
        if frame.size != (width, height):
            canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
            canvas.paste(frame, (0, 0))
            frame = canvas
        padded.append(frame)
    return tuple(padded)


def _normalise(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """One of L, LA, RGB, RGBA, and the ICC profile that still describes it."""
    mode = image.mode
    if mode == "CMYK":
        return _cmyk_to_rgb(image, icc), None
    if mode in ("RGB", "L"):
        if "transparency" in image.info:
            # A tRNS colour key is transparency; as an info entry it would reach the
            # encoders, which refuse a tuple key on the palette image PNG makes.
            keyed = image.convert("RGBA" if mode == "RGB" else "LA")
            return _drop_opaque_alpha(keyed), icc
        return image, icc
    if mode == "RGBA":
        return _drop_opaque_alpha(image), icc
    if mode == "LA":
        return _drop_opaque_alpha(image), icc
    if mode == "1":
        return image.convert("L"), None
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        converted = image.convert("RGBA" if has_alpha else "RGB")
        return _drop_opaque_alpha(converted), icc
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _wide_gray_to_l(image), icc
    if mode == "RGBa":
        return image.convert("RGBA"), icc
    if mode == "La":
        return image.convert("LA"), icc
    if mode == "LAB":
        return _lab_to_rgb(image), None
    try:
        return image.convert("RGBA" if "A" in mode else "RGB"), None
    except ValueError as exc:
        raise InvalidImage(f"Unsupported pixel mode {mode}") from exc


def _drop_opaque_alpha(image: Image.Image) -> Image.Image:
    # A fully opaque alpha band costs bytes and rules out JPEG-like paths for nothing.
    if "A" not in image.getbands():
        return image
    if image.mode not in ("RGBA", "LA"):
        return image
    alpha = image.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return image.convert("RGB" if image.mode == "RGBA" else "L")
    return image


def _wide_gray_to_l(image: Image.Image) -> Image.Image:
    # Pillow's I;16 -> L conversion clips instead of scaling; scale 0..65535 to 0..255.
    as_i = image.convert("I") if image.mode != "I" else image
    low, high = as_i.getextrema()
    if isinstance(high, (int, float)) and high <= 255 and image.mode == "I":
        return as_i.convert("L")
    return as_i.point(lambda v: v * (1 / 257)).convert("L")


_SRGB = ImageCms.createProfile("sRGB")


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image, source_profile, _SRGB, outputMode="RGB",
                renderingIntent=ImageCms.Intent.PERCEPTUAL,
            )
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the plain formula below
    return image.convert("RGB")


def _lab_to_rgb(image: Image.Image) -> Image.Image:
    lab = ImageCms.createProfile("LAB")
    transform = ImageCms.buildTransform(lab, _SRGB, "LAB", "RGB")
    result = ImageCms.applyTransform(image, transform)
    assert result is not None
    return result


def _exif_without_orientation(image: Image.Image) -> Image.Exif | None:
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001
        return None
    if not exif:
        return None
    exif[_ORIENTATION_TAG] = 1
    return exif


def _xmp_without_orientation(xmp: bytes | str | None) -> bytes | None:
    if not xmp:
        return None
    raw = xmp.encode() if isinstance(xmp, str) else xmp
    raw = re.sub(rb'tiff:Orientation="\d"', b'tiff:Orientation="1"', raw)
    raw = re.sub(rb"<tiff:Orientation>\d</tiff:Orientation>",
                 b"<tiff:Orientation>1</tiff:Orientation>", raw)
    return raw

