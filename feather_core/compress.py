"""The library's entry point: bytes and options in, bytes and a result record out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from feather_core import auto_format, perceptual, pipeline, visual_quality
from feather_core.auto_format import Candidate
from feather_core.deadline import Deadline
from feather_core.decode import Source, decode, open_source
from feather_core.encode import ENCODERS, LOSSY, EncodeSettings
from feather_core.errors import OutputTooLarge
from feather_core.formats import FORMATS, OUTPUT_NAMES, Format, can_hold, output_format
from feather_core.jpeg_quality import size_anchor
from feather_core.jpeg_upright import upright_jpeg
from feather_core.metadata import jpeg_metadata_bytes, strip_metadata
from feather_core.options import LEVELS, CompressOptions, Limits
from feather_core.picture import Picture
from feather_core.png_quantize import PngEffort, optimise
from feather_core.steps.job import Job
from feather_core.steps.resize import fit_within
from feather_core.target_size import PIXEL_EXPONENT, fit_to_size, mosaic_sample


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
    # SSIMULACRA2 of the output against the processed picture, when ``quality=auto`` asked
    # for it (100 for a lossless output); None otherwise.
    score: float | None = None

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
    """The output format: the asked one, or for ``auto`` the one the pipeline works towards.

    An asked format that cannot hold ``size`` (default: ``planned_size``) raises
    ``OutputTooLarge``, naming the limit and how to get under it. With ``auto`` the final
    format is chosen once the pixels are seen (``feather_core.auto_format``), among those
    that can hold them; ``CompressResult.format`` says which it was.
    """
    width, height = size or planned_size(options, source)
    if options.output_format != "auto":
        fmt = output_format(options.output_format)
        if not can_hold(fmt, width, height):
            raise _too_large(fmt, width, height)
        return fmt
    choice = auto_format.provisional(source, options.accept)
    if can_hold(choice, width, height):
        return choice
    # Too big for the provisional pick (WebP stops at 16383 a side): PNG keeps alpha,
    # frames and graphics, JPEG opaque photos.
    graphic = source.has_alpha or source.animated or source.format in _GRAPHIC_SOURCES
    for name in ("png",) if graphic else ("jpeg", "png"):
        if can_hold(output_format(name), width, height):
            return output_format(name)
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
    # A rotated JPEG asked for nothing but compression: the input, turned upright without
    # decoding, is a candidate too (see feather_core.jpeg_upright).
    rotated_only = source.format == "jpeg" and source.orientation != 1 and \
        _asks_only_upright(options, source, out)

    if untouched and options.target_bytes and len(data) <= options.target_bytes:
        passthrough = _passthrough(data, source, options)
        if passthrough is not None:
            return _unchanged_result(passthrough, source, len(data), target_met=True)
    if rotated_only and options.target_bytes and len(data) <= options.target_bytes:
        upright = _upright(data, source, options, deadline, options.target_bytes)
        if upright is not None:
            return _unchanged_result(upright, source, len(data), target_met=True)
    if untouched and options.output_format == "png" and not options.target_bytes \
            and not source.animated \
            and (options.lossless or options.quality >= 100):
        optimised = _optimised_png(data, source, options)
        if optimised is not None:
            return optimised

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
    if not can_hold(out, *picture.size):
        # A free rotation grew the canvas past what the format holds.
        out = resolve_output(options, source, picture.size)

    if options.output_format == "auto":
        content = auto_format.classify(picture.first)
        plan = auto_format.candidates(picture, content, options.accept,
                                      visual=options.quality_level is not None)
    else:
        plan = (Candidate(out, lossy=out.name in LOSSY),)
    # The input itself competes when nothing but compression was asked (below).
    input_bound = len(data) if untouched and not options.target_bytes else None
    made: list[_Encoded] = []
    for index, candidate in enumerate(plan):
        to_beat = min([len(m.data) for m in made]
                      + ([input_bound] if input_bound is not None else []), default=None)
        last_chance = not made and index == len(plan) - 1
        if to_beat is not None and not last_chance \
                and _cannot_win(candidate, picture, to_beat, options, settings, deadline):
            continue
        made.append(_encode(candidate, picture, options, settings, deadline,
                            lambda pic, fmt: _size_estimate(data, source, options, fmt, pic)))
    if options.target_bytes and not any(m.target_met for m in made):
        # The byte cap wins: when no lossless output fits, a lossy one is tried too.
        fallback = auto_format.lossy_fallback(picture, options.accept) if (
            options.output_format == "auto" and not any(c.lossy for c in plan)) else None
        if fallback is not None:
            made.append(_encode(fallback, picture, options, settings, deadline,
                                lambda pic, fmt: None))
    # The cap first, then quality=auto's floor (an output short of it, such as lossy WebP
    # on a saturated drawing that no quality brings to the floor, loses to one that
    # reaches it), then bytes.
    floor = LEVELS[options.quality_level] if options.quality_level else None
    best = min(made, key=lambda m: (options.target_bytes is not None and not m.target_met,
                                    floor is not None and m.score is not None and m.score < floor,
                                    len(m.data)))

    if untouched and not options.target_bytes and len(best.data) >= len(data):
        passthrough = _passthrough(data, source, options)
        if passthrough is not None and len(passthrough) <= len(best.data):
            return _unchanged_result(passthrough, source, len(data), target_met=None)
    if rotated_only and not options.target_bytes and len(best.data) >= len(data):
        upright = _upright(data, source, options, deadline, len(data))
        if upright is not None:
            return replace(_unchanged_result(upright, source, len(data), target_met=None),
                           iterations=sum(m.encodes for m in made))
        # jpegtran cannot turn it exactly (a partial block would reach the top or left
        # edge): a JPEG re-encode is fitted under the input's size instead, quality only.
        jpeg = FORMATS["jpeg"]
        start = best.quality if best.format is jpeg and best.quality else options.quality
        fit = fit_to_size(picture, lambda pic, q: ENCODERS["jpeg"](pic, q, settings),
                          len(data) - 1, start, True, deadline,
                          _size_estimate(data, source, options, jpeg, picture),
                          floor=1, allow_scaling=False)
        if len(fit.data) < len(best.data):
            made.append(_Encoded(fit.data, jpeg, fit.picture, fit.quality, None, fit.encodes,
                                 None))
            best = made[-1]

    width, height = best.picture.size
    return CompressResult(
        data=best.data, format=best.format, width=width, height=height, quality=best.quality,
        input_format=source.format, original_bytes=len(data),
        resized=resized or best.picture.size != picture.size, target_met=best.target_met,
        iterations=sum(m.encodes for m in made), score=best.score,
    )


# A lossless candidate of a large picture (auto on mixed content and on graphics) is
# first encoded on the target-size search's mosaic of full-resolution tiles (1 MP, from
# 4 MP): when its bytes, scaled to the whole area, are well above an output already made
# (or the input, when it competes), the full encode is skipped. A lossless encode of a
# 9-16 MP photo takes seconds, and on photos that look flat enough to be tried (phone HDR
# shots, smooth scans) it never wins: seen on the corpus, 30 s of CPU (a 504) where one
# WebP encode took 2 s.
LOSSLESS_MARGIN = 1.3


def _cannot_win(candidate: Candidate, picture: Picture, to_beat: int,
                options: CompressOptions, settings: EncodeSettings, deadline: Deadline) -> bool:
    if candidate.lossy or options.target_bytes:
        return False
    sample = mosaic_sample(picture)
    if sample is None:
        return False
    tiles, growth = sample
    trial = _encode(candidate, tiles, replace(options, quality_level=None), settings, deadline,
                    lambda pic, fmt: None)
    return len(trial.data) * growth > LOSSLESS_MARGIN * to_beat


@dataclass(frozen=True)
class _Encoded:
    """One candidate's output and how it was made."""

    data: bytes
    format: Format
    picture: Picture
    quality: int | None
    score: float | None
    encodes: int
    target_met: bool | None


def _encode(candidate: Candidate, picture: Picture, options: CompressOptions,
            settings: EncodeSettings, deadline: Deadline,
            estimate: Callable[[Picture, Format], tuple[int, float] | None]) -> _Encoded:
    """Encode one candidate: at the asked quality, at ``quality=auto``'s floor, under the cap."""
    fmt = candidate.format
    level = options.quality_level
    if not candidate.lossy:
        # PNG takes the asked quality (its encoder decides what it means); lossless WebP
        # is exact, so its score needs no measuring.
        if fmt.name == "webp":
            output = auto_format.encode_webp_lossless(picture, settings)
            score = 100.0 if level else None
        else:
            output = ENCODERS[fmt.name](picture, options.quality, settings)
            score = visual_quality.score_of(picture, output, fmt.name) if level else None
        met = len(output) <= options.target_bytes if options.target_bytes else None
        # PNG is palette-quantised at the asked quality, or lossless (100); with
        # quality=auto its score tells what was reached.
        png_quality = None
        if fmt.name == "png" and level is None:
            png_quality = 100 if options.lossless else options.quality
        return _Encoded(output, fmt, picture, png_quality, score, 1, met)

    encoder = ENCODERS[fmt.name]

    def encode_at(pic: Picture, quality: int) -> bytes:
        return encoder(pic, quality, settings)

    quality, score, encodes = options.quality, None, 0
    if level is not None and perceptual.available():
        found = visual_quality.encode_to_level(picture, encode_at, fmt.name, level, deadline)
        output, quality, score = found.best.data, found.best.quality, found.best.score
        encodes = len(found.tries)
        if not options.target_bytes or len(output) <= options.target_bytes:
            met = None if not options.target_bytes else True
            return _Encoded(output, fmt, picture, quality, score, encodes, met)
    elif level is not None:
        quality = visual_quality.first_try(fmt.name, level)  # no metric built: its usual quality
    if options.target_bytes:
        fit = fit_to_size(picture, encode_at, options.target_bytes, quality, True, deadline,
                          estimate(picture, fmt))
        if level is not None:
            score = visual_quality.score_of(fit.picture, fit.data, fmt.name)
        return _Encoded(fit.data, fmt, fit.picture, fit.quality, score, encodes + fit.encodes,
                        fit.met)
    return _Encoded(encode_at(picture, quality), fmt, picture, quality, score, 1, None)


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
    """Whether the output may be the input itself: same format (or ``auto`` and a format the
    client shows), same pixels asked for."""
    return source.orientation == 1 and _asks_only_upright(options, source, out)


def _asks_only_upright(options: CompressOptions, source: Source, out: Format) -> bool:
    """Whether the upright input is all that was asked for: its format (asked, or one ``auto``
    may answer with), no edit, no resize."""
    if options.output_format == "auto":
        if source.format not in auto_format.shown_formats(options.accept, source.format):
            return False
    elif out.name != source.format:
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


def _optimised_png(data: bytes, source: Source, options: CompressOptions) -> CompressResult | None:
    """A lossless PNG job on an untouched PNG: the input's own pixels, recompressed.

    oxipng works on the file as it is, so nothing is lost on the way (16-bit samples
    stay 16-bit, as decoding would not keep them) and the result is exactly what
    ``oxipng -o 2`` makes of it, less the metadata Feather strips.
    """
    stripped = _passthrough(data, source, options)
    if stripped is None:
        return None
    width, height = source.size
    effort = PngEffort.for_job(EncodeSettings.from_options(options).effort, options.preview)
    level = effort.level_for(width * height * len(source.image.getbands()))
    if level is None:
        return None  # preview: the decoder's fast path
    output = optimise(stripped, level)
    if output is stripped:
        return None  # oxipng could not read it or do better: decoding decides
    return CompressResult(
        data=output, format=FORMATS["png"], width=width, height=height, quality=100,
        input_format=source.format, original_bytes=len(data), resized=False,
        target_met=None, iterations=1,
    )


def _upright(data: bytes, source: Source, options: CompressOptions, deadline: Deadline,
             limit: int) -> bytes | None:
    """The rotated JPEG input losslessly turned upright, if exact and at most ``limit`` bytes."""
    keep = not options.strip_metadata
    upright = upright_jpeg(data, source.orientation, keep_metadata=keep,
                           progressive=bool(options.progressive), timeout=deadline.remaining())
    if upright is not None and len(upright) > limit and not options.progressive:
        # Progressive scans are a few per cent smaller than optimised baseline ones.
        upright = upright_jpeg(data, source.orientation, keep_metadata=keep, progressive=True,
                               timeout=deadline.remaining())
    return upright if upright is not None and len(upright) <= limit else None


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
