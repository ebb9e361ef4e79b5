"""The library's entry point: bytes and options in, bytes and a result record out."""

from __future__ import annotations

from dataclasses import dataclass

from feather_core import pipeline
from feather_core.deadline import Deadline
from feather_core.decode import Source, decode, open_source
from feather_core.encode import ENCODERS, LOSSY, EncodeSettings
from feather_core.formats import FORMATS, Format, choose_auto_format, output_format
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


def resolve_output(options: CompressOptions, source: Source) -> Format:
    """The output format: the asked one, or the ``auto`` rule's choice."""
    if options.output_format != "auto":
        return output_format(options.output_format)
    return output_format(choose_auto_format(source.format, source.has_alpha, source.animated))


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
    job = Job(options, out, limits)
    picture = pipeline.run(picture, job, deadline)
    resized = picture.resized
    deadline.check()

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
