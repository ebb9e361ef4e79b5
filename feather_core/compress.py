"""The library's entry point: bytes and options in, bytes and a result record out."""

from __future__ import annotations

from dataclasses import dataclass

from feather_core import pipeline
from feather_core.deadline import Deadline
from feather_core.decode import Source, decode, open_source
from feather_core.encode import ENCODERS, LOSSY, EncodeSettings
from feather_core.errors import OutputTooLarge
from feather_core.formats import (
    FORMATS,
    OUTPUT_NAMES,
    Format,
    can_hold,
    choose_auto_format,
    output_format,
)
from feather_core.jpeg_quality import size_anchor
from feather_core.metadata import jpeg_metadata_bytes, strip_metadata
from feather_core.options import CompressOptions, Limits
from feather_core.picture import Picture
from feather_core.steps.job import Job
from feather_core.steps.resize import fit_within
from feather_core.target_size import PIXEL_EXPONENT, fit_to_size


@dataclass(frozen=True)
class CompressResult:
    """What came out, and the facts the API reports about it."""

    data: bytes
    format: Format
    width: int
    height: int
    quality: int | None
    input_format: str
    original_bytes: int
    resized: bool
    target_met: bool | None
    iterations: int
    # True when the input itself was returned because re-encoding would not shrink it.
    unchanged: bool = False

    @property
    def output_bytes(self) -> int:
        return len(self.data)

    @property
    def ratio(self) -> float:
        return self.original_bytes / max(1, len(self.data))


def planned_size(options: CompressOptions, source: Source) -> tuple[int, int]:
    """The output size the options ask for, known before decoding.

    Crops, right-angle rotations and maxWidth/maxHeight are counted; a free rotation
    grows the canvas by an amount only the rotation itself knows, so the size is
    checked again after the pipeline (``compress`` does).
    """
    width, height = source.size
    edits = options.edits
    if edits.crop is not None:
        rect = edits.crop
        width = max(1, min(width - rect.x, rect.width))
        height = max(1, min(height - rect.y, rect.height))
    if edits.rotate % 180 == 90:
        width, height = height, width
    return fit_within((width, height), options.max_width, options.max_height)


def resolve_output(options: CompressOptions, source: Source,
                   size: tuple[int, int] | None = None) -> Format:
    """The output format: the asked one, or the ``auto`` rule's choice, for ``size``.

    ``size`` (default: ``planned_size``) must fit the format: an asked format that
    cannot hold it raises ``OutputTooLarge``; ``auto`` falls back to one that can.
    """
    width, height = size or planned_size(options, source)
    if options.output_format != "auto":
        fmt = output_format(options.output_format)
        if not can_hold(fmt, width, height):
            raise _too_large(fmt, width, height)
        return fmt
    choice = output_format(choose_auto_format(source.format, source.has_alpha, source.animated))
    if can_hold(choice, width, height):
        return choice
    # Too big for the rule's pick (WebP stops at 16383 a side): JPEG for opaque photos,
    # PNG for graphics, transparency and animations (its first frame), or when JPEG
    # cannot hold the size either.
    graphic = source.has_alpha or source.animated or source.format in _GRAPHIC_SOURCES
    for name in ("png",) if graphic else ("jpeg", "png"):
        fallback = output_format(name)
        if can_hold(fallback, width, height):
            return fallback
    raise _too_large(choice, width, height)


_GRAPHIC_SOURCES = frozenset({"png", "gif", "svg", "bmp"})


def _too_large(fmt: Format, width: int, height: int) -> OutputTooLarge:
    assert fmt.max_side is not None
    alternatives = {name: output_format(name).max_side for name in OUTPUT_NAMES
                    if name != fmt.name and can_hold(output_format(name), width, height)}
    return OutputTooLarge(fmt.name, width, height, fmt.max_side, alternatives)


def _shrink_hint(options: CompressOptions, source: Source) -> tuple[int, int] | None:
    # JPEG can decode at 1/2, 1/4, 1/8 scale for free. Only safe when nothing between
    # decode and resize depends on full-resolution coordinates.
    edits = options.edits
    if edits.crop is not None or edits.rotate % 360 != 0 or options.target_bytes:
        return None
    target = fit_within(source.size, options.max_width, options.max_height)
    return None if target == source.size else target


def compress(data: bytes, options: CompressOptions, limits: Limits | None = None) -> CompressResult:
    """Decode ``data``, run the pipeline, encode (fitting ``target_bytes`` if set).

    Raises the ``feather_core.errors`` exceptions: ``UnsupportedFormat``,
    ``InvalidImage``, ``TooManyPixels``, ``InvalidOptions``, ``ProcessingTimeout``,
    ``ProcessingFailed``.
    """
    limits = limits or Limits()
    deadline = Deadline(limits.timeout)
    source = open_source(data, limits, deadline)
    out = resolve_output(options, source)
    settings = EncodeSettings.from_options(options)
    untouched = _asks_nothing_but_compression(options, source, out)

    if untouched and options.target_bytes and len(data) <= options.target_bytes:
        passthrough = _passthrough(data, source, options)
        if passthrough is not None:
            return _unchanged_result(passthrough, source, len(data), target_met=True)

    picture = decode(
        source,
        keep_animation=out.animation and out.name == "webp",
        keep_metadata=not options.strip_metadata,
        shrink_to=_shrink_hint(options, source),
    )
    deadline.check()
    job = Job(options, out)
    picture = pipeline.run(picture, job, deadline)
    resized = picture.resized
    deadline.check()
    if not can_hold(out, *picture.size):
        # A free rotation grew the canvas past what the format holds.
        out = resolve_output(options, source, picture.size)

    encoder = ENCODERS[out.name]

    def encode_at(pic: Picture, quality: int) -> bytes:
        return encoder(pic, quality, settings)

    quality: int | None = options.quality if out.name in LOSSY else None
    target_met: bool | None = None
    if options.target_bytes:
        fit = fit_to_size(picture, encode_at, options.target_bytes, options.quality,
                          out.name in LOSSY, deadline,
                          _size_estimate(data, source, options, out, picture))
        output, iterations, target_met = fit.data, fit.encodes, fit.met
        if out.name in LOSSY:
            quality = fit.quality
        resized = resized or fit.picture.size != picture.size
        picture = fit.picture
    else:
        output, iterations = encode_at(picture, options.quality), 1

    if untouched and not options.target_bytes and len(output) >= len(data):
        passthrough = _passthrough(data, source, options)
        if passthrough is not None and len(passthrough) <= len(output):
            return _unchanged_result(passthrough, source, len(data), target_met=None)

    width, height = picture.size
    return CompressResult(
        data=output, format=out, width=width, height=height, quality=quality,
        input_format=source.format, original_bytes=len(data), resized=resized,
        target_met=target_met, iterations=iterations,
    )


def _size_estimate(data: bytes, source: Source, options: CompressOptions, out: Format,
                   picture: Picture) -> tuple[int, float] | None:
    """A JPEG-to-JPEG job's likely (quality, bytes) at the picture's size, from the input."""
    if source.format != "jpeg" or out.name != "jpeg" or options.edits.any or options.watermark:
        return None
    anchor = size_anchor(source.image, len(data) - jpeg_metadata_bytes(data))
    if anchor is None:
        return None
    width, height = source.size
    shrink = picture.size[0] * picture.size[1] / (width * height)
    return anchor[0], anchor[1] * shrink ** PIXEL_EXPONENT


def _asks_nothing_but_compression(options: CompressOptions, source: Source, out: Format) -> bool:
    """Whether the output may be the input itself: same format, same pixels asked for."""
    if out.name != source.format or source.orientation != 1:
        return False
    if options.edits.any or options.watermark is not None:
        return False
    return fit_within(source.size, options.max_width, options.max_height) == source.size


def _passthrough(data: bytes, source: Source, options: CompressOptions) -> bytes | None:
    """The input itself, metadata stripped as asked, or None if it cannot be stripped."""
    if not options.strip_metadata:
        return data
    stripped = strip_metadata(data, source.format)
    if stripped is None and not (source.image.info.get("exif") or source.image.info.get("xmp")):
        return data  # nothing to strip (AVIF has no lossless stripper here)
    return stripped


def _unchanged_result(
    data: bytes, source: Source, original: int, target_met: bool | None
) -> CompressResult:
    width, height = source.size
    return CompressResult(
        data=data, format=FORMATS[source.format], width=width, height=height, quality=None,
        input_format=source.format, original_bytes=original, resized=False,
        target_met=target_met, iterations=0, unchanged=True,
    )


__all__ = ["CompressResult", "compress"]
