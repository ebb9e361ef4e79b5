"""Decoding: sniff, open with only the expected plugin, check the pixel budget, load.

Opening reads headers only, so the pixel budget is enforced before any pixel is
decoded. Loading normalises every mode to one of L, LA, RGB, RGBA, and cuts an AVIF to
its clean aperture (``clap``), which Pillow's AVIF plugin does not apply.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageCms, ImageMath

from feather_core import svg
from feather_core.deadline import Deadline
from feather_core.errors import FeatherError, InvalidImage, TooManyPixels
from feather_core.formats import FORMATS
from feather_core.frames import gif_frames
from feather_core.isobmff import (
    av1_size_mismatches,
    clean_aperture,
    merge_property_associations,
)
from feather_core.metadata import iptc_from_png_text
from feather_core.options import Limits
from feather_core.picture import Picture
from feather_core.sniff import declared_size, sniff_format

# Pillow's own bomb check raises only at twice its limit and warns below that; the
# budget here is ours, checked from the header, so its warning is noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

_ORIENTATION_TAG = 0x0112

_registered_heif = False


def register_heif() -> None:
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
    # Pillow's TIFF plugin turns the pixels upright itself while loading (and already
    # reports the upright size): the orientation is then a fact, not a step to do.
    oriented_by_decoder: bool = False
    # "cielab" or "icclab" when the pixels are Lab read as RGB bytes (16-bit and
    # ICC-Lab TIFFs, which Pillow has no mode for); converted to sRGB when decoded.
    lab: str | None = None
    # The part of the decoded pixels the image shows, (left, top, width, height) before
    # orientation: an AVIF's clean aperture. The pixel budget counts what is decoded.
    crop: tuple[int, int, int, int] | None = None

    @property
    def _shown_size(self) -> tuple[int, int]:
        return (self.crop[2], self.crop[3]) if self.crop else self.image.size

    @property
    def stored_size(self) -> tuple[int, int]:
        w, h = self._shown_size
        swapped = self.oriented_by_decoder and self.orientation in (5, 6, 7, 8)
        return (h, w) if swapped else (w, h)

    @property
    def size(self) -> tuple[int, int]:
        """Width and height after EXIF orientation."""
        w, h = self._shown_size
        if self.oriented_by_decoder:
            return w, h
        return (h, w) if self.orientation in (5, 6, 7, 8) else (w, h)

    @property
    def pending_orientation(self) -> int:
        """The EXIF orientation the pipeline still has to apply (1 when none)."""
        return 1 if self.oriented_by_decoder else self.orientation

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
    if fmt == "avif":
        data = _checked_avif(data)
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
            register_heif()
    assert pillow_id is not None
    lab = None
    try:
        image = _open(data, pillow_id, fmt, limits)
    except InvalidImage:
        relabelled = _lab_tiff_as_rgb(data) if fmt == "tiff" else None
        if relabelled is None:
            raise
        data, lab = relabelled
        image = _open(data, pillow_id, fmt, limits)

    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidImage("The image has no pixels")
    if width * height > limits.max_pixels:
        raise TooManyPixels(_too_many(limits))
    frames = counted or _count_frames(image, fmt, limits)
    if width * height * frames > limits.max_pixels:
        raise TooManyPixels(_too_many(limits))
    # pillow-heif (HEIC, HEIF) applies the clean aperture itself. Pillow's AVIF plugin
    # hands back the whole coded picture, and irot/imir as the EXIF orientation that
    # the pipeline applies after the cut.
    crop = clean_aperture(data, (width, height)) if pillow_id == "AVIF" else None
    return Source(fmt, image, frames, _orientation(image),
                  oriented_by_decoder=fmt == "tiff", lab=lab,
                  crop=None if crop == (0, 0, width, height) else crop)


def _open(data: bytes, pillow_id: str, fmt: str, limits: Limits) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=[pillow_id])
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(_too_many(limits)) from exc
    except MemoryError:
        raise
    except Exception as exc:
        raise InvalidImage(f"The file could not be decoded as {fmt.upper()}") from exc


def _checked_avif(data: bytes) -> bytes:
    """The AVIF as libavif will take it, refused when its declared size is not its coded one."""
    for mismatch in av1_size_mismatches(data):
        (dw, dh), (cw, ch) = mismatch.declared, mismatch.coded
        raise InvalidImage(
            f"The AVIF declares an image of {dw}x{dh} pixels (ispe) but its AV1 data codes "
            f"{cw}x{ch}")
    return merge_property_associations(data)


_PHOTOMETRIC = 262
_BITS_PER_SAMPLE = 258
_LAB_PHOTOMETRIC = {8: "cielab", 9: "icclab"}


def _lab_tiff_as_rgb(data: bytes) -> tuple[bytes, str] | None:
    """A Lab TIFF that Pillow cannot open, relabelled RGB so its bytes can be read.

    Pillow reads only 8-bit CIELab. Other Lab TIFFs (16-bit, ICC-Lab) are opened as RGB
    of the same bit depth by rewriting one entry of the first IFD (the photometric
    interpretation); ``_lab_bytes_to_rgb`` then converts the Lab values to sRGB.
    """
    from PIL import TiffImagePlugin

    try:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(data[:8])
        stream = io.BytesIO(data)
        stream.seek(ifd.next)
        ifd.load(stream)
        photometric = ifd.get(_PHOTOMETRIC)
        bits = ifd.get(_BITS_PER_SAMPLE, (8,))
    except Exception:  # noqa: BLE001 - not a readable TIFF directory: no Lab to rescue
        return None
    if photometric not in _LAB_PHOTOMETRIC or tuple(bits) not in ((8, 8, 8), (16, 16, 16)):
        return None
    order: Literal["big", "little"] = "big" if data[:2] == b"MM" else "little"
    first_ifd = int.from_bytes(data[4:8], order)
    count = int.from_bytes(data[first_ifd : first_ifd + 2], order)
    for index in range(count):
        entry = first_ifd + 2 + 12 * index
        if int.from_bytes(data[entry : entry + 2], order) == _PHOTOMETRIC:
            value = entry + 8  # a SHORT value sits in the first two bytes of the field
            patched = data[:value] + (2).to_bytes(2, order) + data[value + 2 :]
            return patched, _LAB_PHOTOMETRIC[photometric]
    return None


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
    if image.format == "PNG" and "exif" not in image.info:
        # Pillow looks for an eXIf chunk after the pixels by decoding them; a failure
        # there is broken image data (it would otherwise pass silently, half decoded).
        try:
            image.load()
        except MemoryError:
            raise
        except Exception as exc:
            raise InvalidImage("The PNG data is broken or truncated") from exc
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not sink an image that decodes
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _load_drafted(image: Image.Image, stream: object) -> Image.Image:
    """Load a JPEG set to decode at a reduced DCT scale; where libjpeg's scaled decoding
    fails on a file that decodes whole (seen on real files), decode it whole instead."""
    try:
        image.load()
        return image
    except Exception:
        if not isinstance(stream, io.BytesIO):
            raise
    stream.seek(0)
    whole = Image.open(stream, formats=["JPEG"])
    whole.load()
    return whole


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
    stream = getattr(image, "fp", None)  # the encoded bytes, to decode whole if need be
    if shrink_to and source.format == "jpeg" and source.frame_count == 1:
        full_size = source.size
        w, h = shrink_to
        if source.orientation in (5, 6, 7, 8):
            w, h = h, w
        image.draft(image.mode, (w, h))
        if source.size != full_size:
            nominal_size = full_size

    icc = image.info.get("icc_profile") or None
    exif = xmp = iptc = None
    if keep_metadata:
        exif = _exif_without_orientation(image, source.format)
        xmp = _xmp_without_orientation(_xmp_of(image))
        iptc = _iptc_of(image, source.format)
    try:
        if keep_animation and source.animated:
            loop = _plays(source.format, image.info.get("loop"))
            frames, durations = _load_frames(image, source.crop)
        else:
            if nominal_size is not None:
                loaded = _load_drafted(image, stream)
                if loaded is not image:
                    nominal_size = None  # decoded whole after all
                image = loaded
            else:
                image.load()
            shown = image.crop(_box(source.crop)) if source.crop else image
            frames, durations, loop = (shown,), (), 0
        normalised: list[tuple[Image.Image, bytes | None]]
        if source.lab:
            normalised = [(_lab_bytes_to_rgb(f, source.lab), None) for f in frames]
        else:
            normalised = [_normalise(f, icc) for f in frames]
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(str(exc)) from exc
    except (FeatherError, MemoryError):
        raise
    except Exception as exc:
        raise InvalidImage(f"The {source.format.upper()} data is broken or truncated") from exc
    frames_out = tuple(im for im, _ in normalised)
    icc_out = normalised[0][1]
    return Picture(
        frames=frames_out,
        durations=durations,
        loop=loop,
        orientation=source.pending_orientation,
        icc=icc_out,
        exif=exif,
        xmp=xmp,
        iptc=iptc,
        nominal_size=nominal_size,
    )


def _box(crop: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    left, top, width, height = crop
    return left, top, left + width, top + height


def _load_frames(image: Image.Image, crop: tuple[int, int, int, int] | None = None,
                 ) -> tuple[tuple[Image.Image, ...], tuple[int, ...]]:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        image.load()
        if crop is None:
            frame = image.convert("RGBA")
        else:
            # A copy either way: the next frame is loaded over this one.
            frame = image.crop(_box(crop))
            if frame.mode != "RGBA":
                frame = frame.convert("RGBA")
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
        grey = _wide_gray_to_l(image)
        key = image.info.get("transparency")
        if isinstance(key, int):  # a 16-bit tRNS colour key: transparency, kept as alpha
            keyed = ImageMath.lambda_eval(lambda a: a["equal"](a["image"], key),
                                          image=image.convert("I"))
            assert isinstance(keyed, Image.Image)
            grey.putalpha(keyed.convert("L").point(lambda v: 0 if v else 255))
            return _drop_opaque_alpha(grey), icc
        return grey, icc
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


def _lab_bytes_to_rgb(image: Image.Image, lab: str) -> Image.Image:
    """sRGB from Lab values that were read as RGB bytes (see ``_lab_tiff_as_rgb``)."""
    lightness, a, b = image.convert("RGB").split()
    if lab == "cielab":
        # CIELab stores a* and b* as signed numbers; Pillow's LAB mode wants them +128.
        a, b = (band.point(lambda v: v ^ 0x80) for band in (a, b))
    return _lab_to_rgb(Image.merge("LAB", (lightness, a, b)))


def _plays(fmt: str, loop: object) -> int:
    """How many times the animation plays (0: forever), as WebP and APNG count.

    A GIF without a NETSCAPE loop block plays once; one whose block says N plays once
    and then repeats N times, as browsers show it. WebP and APNG count plays already.
    """
    if not isinstance(loop, int) or loop < 0:
        return 1 if fmt == "gif" else 0
    if fmt == "gif" and loop > 0:
        return min(loop + 1, 0xFFFF)
    return loop


# TIFF keeps its own structure (strips, tiles, compression, samples) in the same first
# directory Pillow returns as EXIF; written into another format these tags would
# describe pixels that are not there. Only what says something about the picture stays.
_TIFF_DESCRIPTIVE_TAGS = frozenset({
    0x010E, 0x010F, 0x0110, 0x0112, 0x011A, 0x011B, 0x0128, 0x0131, 0x0132, 0x013B,
    0x013C, 0x8298, 0x8769, 0x8825, 0xA005,
})


def _exif_without_orientation(image: Image.Image, fmt: str) -> Image.Exif | None:
    try:
        exif = image.getexif()
        if fmt == "tiff":
            descriptive = Image.Exif()
            for tag, value in exif.items():
                if tag in _TIFF_DESCRIPTIVE_TAGS:
                    descriptive[tag] = value
            for ifd in (0x8769, 0x8825):  # the Exif and GPS directories travel whole
                if ifd in exif:
                    descriptive[ifd] = exif.get_ifd(ifd)
            exif = descriptive
    except Exception:  # noqa: BLE001 - broken EXIF is dropped, not a reason to fail
        return None
    if not exif:
        return None
    exif[_ORIENTATION_TAG] = 1
    return exif


def _xmp_of(image: Image.Image) -> bytes | str | None:
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if not xmp and image.format == "TIFF":
        xmp = getattr(image, "tag_v2", {}).get(_TIFF_XMP)
    return xmp if isinstance(xmp, (bytes, str)) else None


_TIFF_XMP = 700
_TIFF_IPTC = 33723
_PHOTOSHOP_IPTC = 0x0404


def _iptc_of(image: Image.Image, fmt: str) -> bytes | None:
    """The IPTC-IIM records of a JPEG (Photoshop APP13), TIFF or PNG (ImageMagick text)."""
    data: object = None
    if fmt == "jpeg":
        photoshop = image.info.get("photoshop")
        if isinstance(photoshop, dict):
            data = photoshop.get(_PHOTOSHOP_IPTC)
    elif fmt == "tiff":
        # Photoshop types the IPTC tag as 4-byte integers; the raw bytes are what count.
        data = getattr(getattr(image, "tag_v2", None), "_tagdata", {}).get(_TIFF_IPTC)
    elif fmt == "png":
        data = iptc_from_png_text(image.info.get("Raw profile type iptc"))
    return bytes(data) if isinstance(data, (bytes, bytearray)) and data else None


def _xmp_without_orientation(xmp: bytes | str | None) -> bytes | None:
    if not xmp:
        return None
    raw = xmp.encode() if isinstance(xmp, str) else xmp
    raw = re.sub(rb'tiff:Orientation="\d"', b'tiff:Orientation="1"', raw)
    raw = re.sub(rb"<tiff:Orientation>\d</tiff:Orientation>",
                 b"<tiff:Orientation>1</tiff:Orientation>", raw)
    return raw

