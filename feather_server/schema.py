"""The one table of request fields, for both API dialects.

Every field a request may carry is written here once: its name, the dialects that take
it, its kind, its range or choices (from ``feather_core.options`` where the core owns
them), its default and its help text. Everything else is made from ``FIELDS``:

- the form parser below (``read_values`` and the builders after it);
- the OpenAPI document (``feather_server.openapi``);
- the command line's options (``feather_cli.options``);
- the upload form's limits (``feather_server.web``);
- the README's field tables (``feather_server.readme``).

A test checks that each of them agrees with this table. No Flask and no Werkzeug here:
the command line imports this module to build its options.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from feather_core import options as core
from feather_core.errors import InvalidOptions
from feather_core.options import CompressOptions, Crop, Edits, Range, Watermark
from feather_server.ai.ask import AiAsk
from feather_server.ai.languages import DEFAULT_LANGUAGE, LANGUAGES
from feather_server.settings import parse_bool as _parse_setting_bool

Kind = Literal["int", "float", "bool", "choice", "text", "file", "quality"]
Dialect = Literal["feather", "flux"]
FEATHER: Dialect = "feather"
FLUX: Dialect = "flux"
BOTH: frozenset[str] = frozenset({FEATHER, FLUX})
ONLY_FEATHER: frozenset[str] = frozenset({FEATHER})
ONLY_FLUX: frozenset[str] = frozenset({FLUX})

# Sane upper bounds for the edge only: the core checks that sizes are positive.
PIXELS = Range(1, 1_000_000)
OFFSET = Range(0, 1_000_000)
TARGET_MB = Range(0.000001, 10_000)
FLUX_QUALITY = Range(40, 100)
FLUX_FORMATS = ("webp", "avif", "jpg", "png")
FLUX_DEFAULT_FORMAT = "webp"
FLUX_DEFAULT_QUALITY = 82
SESSION_ID = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,128}$")
MAX_BATCH_FILES = 20


class BadValue(ValueError):
    """A raw field value that cannot be read; the message is the field's error detail."""


@dataclass(frozen=True)
class Cli:
    """How a field appears on the command line (``--max-width`` is made from the name)."""

    flags: tuple[str, ...] = ()  # extra spellings, e.g. ("-q",)
    off: str | None = None  # the switch that turns off a boolean whose default is on
    metavar: str | None = None


@dataclass(frozen=True)
class Field:
    """One request field: what it is called, what it takes, what it means."""

    name: str
    kind: Kind
    help: str
    dialects: frozenset[str] = BOTH
    range: Range | None = None
    choices: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    # How choices are matched: lower- or upper-cased first, or exactly (NFC).
    case: Literal["lower", "upper", "exact"] = "lower"
    default: Any = None
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    pattern_help: str = ""
    cli: Cli | None = Cli()  # None: not a command-line option
    group: str = "output"

    @property
    def integer(self) -> bool:
        return self.kind == "int"

    def parse(self, raw: str) -> Any:
        """The value of ``raw`` (already known not to be blank); ``BadValue`` otherwise."""
        reader = _READERS[self.kind]
        value = reader(self, raw)
        if self.range is not None and isinstance(value, (int, float)) \
                and value not in self.range:
            raise BadValue(_quality_help(self) if self.kind == "quality" else self.range.message)
        return value


def _read_int(_field: Field, raw: str) -> int:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise BadValue("must be an integer") from None
    if not math.isfinite(value) or value != int(value):
        raise BadValue("must be an integer")
    return int(value)


def _read_float(_field: Field, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise BadValue("must be a number") from None
    if not math.isfinite(value):
        raise BadValue("must be a finite number")
    return value


def parse_bool(raw: str) -> bool:
    """true/false, 1/0, on/off, yes/no in any case; ``BadValue`` otherwise."""
    try:
        return _parse_setting_bool(raw)
    except ValueError:
        raise BadValue("must be true or false (also 1/0, on/off)") from None


def _read_bool(_field: Field, raw: str) -> bool:
    return parse_bool(raw)


def _read_choice(spec: Field, raw: str) -> str:
    text = raw.strip()
    if spec.case == "lower":
        text = text.lower()
    elif spec.case == "upper":
        text = text.upper()
    else:
        text = unicodedata.normalize("NFC", text)
    text = spec.aliases.get(text, text)
    if text not in spec.choices:
        raise BadValue("must be one of " + ", ".join(spec.choices))
    return text


def _read_text(spec: Field, raw: str) -> str:
    text = raw.strip()
    if spec.max_length is not None and len(text) > spec.max_length:
        raise BadValue(f"must be at most {spec.max_length} characters")
    if spec.pattern is not None and not spec.pattern.match(text):
        raise BadValue(spec.pattern_help)
    return text


def _read_quality(spec: Field, raw: str) -> int | str:
    """A number in the field's range, or ``auto``/``auto:LEVEL`` (the level's name)."""
    text = raw.strip().lower()
    if text in core.AUTO_NAMES:
        return core.AUTO_NAMES[text]
    try:
        return _read_int(spec, text)
    except BadValue:
        raise BadValue(_quality_help(spec)) from None


def _quality_help(spec: Field) -> str:
    assert spec.range is not None
    return (f"must be a number between {spec.range.low:g} and {spec.range.high:g}, or "
            + ", ".join(core.AUTO_NAMES))


def _read_file(spec: Field, raw: str) -> str:
    raise BadValue("must be a file part")


_READERS: dict[str, Callable[[Field, str], Any]] = {
    "int": _read_int, "float": _read_float, "bool": _read_bool, "choice": _read_choice,
    "text": _read_text, "file": _read_file, "quality": _read_quality,
}


def _crop(name: str, what: str, bounds: Range) -> Field:
    return Field(name, "int", f"Crop rectangle on the upright source: {what} (give all four).",
                 range=bounds, cli=Cli(metavar="PIXELS"), group="edits")


FIELDS: tuple[Field, ...] = (
    Field("file", "file", "The image. FluxImage: repeat the field for up to 20 images.",
          cli=None, group="files"),
    Field("outputFormat", "choice",
          "Output format: auto (the smallest the client can show), jpeg, png, webp or avif.",
          dialects=ONLY_FEATHER, choices=core.OUTPUT_CHOICES, aliases={"jpg": "jpeg"},
          default="auto", cli=Cli(flags=("-f", "--format"), metavar="FORMAT")),
    Field("format", "choice", "FluxImage output format.", dialects=ONLY_FLUX,
          choices=FLUX_FORMATS, aliases={"jpeg": "jpg"}, default=FLUX_DEFAULT_FORMAT,
          cli=None),
    Field("quality", "quality", "Encoder quality (PNG below 100 is a dithered palette, 100 is "
          "lossless), or auto: the lowest quality that still looks the same (auto:high, "
          "auto = auto:good, auto:eco).", dialects=ONLY_FEATHER, range=core.QUALITY,
          choices=tuple(core.AUTO_NAMES), default=core.DEFAULT_QUALITY,
          cli=Cli(flags=("-q",), metavar="1..100|auto[:LEVEL]")),
    Field("quality", "quality", "Encoder quality of WebP, AVIF and JPEG (PNG is lossless), or "
          "auto, auto:high, auto:eco.", dialects=ONLY_FLUX, range=FLUX_QUALITY,
          choices=tuple(core.AUTO_NAMES), default=FLUX_DEFAULT_QUALITY, cli=None),
    Field("maxWidth", "int", "Resize down so the width is at most this (keeps the aspect, "
          "never enlarges).", range=PIXELS, cli=Cli(metavar="PIXELS"), group="resize"),
    Field("maxHeight", "int", "Resize down so the height is at most this (keeps the aspect, "
          "never enlarges).", range=PIXELS, cli=Cli(metavar="PIXELS"), group="resize"),
    Field("targetMB", "float", "Fit the output under this many MB (1 MB = 1,000,000 bytes): "
          "quality first, then size.", range=TARGET_MB, cli=Cli(metavar="MB"),
          group="resize"),
    Field("stripMetadata", "bool", "Strip EXIF, IPTC and XMP (colour profiles are kept).",
          default=True, cli=Cli(off="keep-metadata")),
    Field("mode", "choice", "final, or preview (faster, larger).", choices=core.MODES,
          default="final", cli=Cli(metavar="final|preview")),
    Field("progressive", "bool", "Progressive JPEG.", default=False,
          cli=Cli(off="no-progressive")),
    Field("effort", "int", "WebP/AVIF/PNG effort: higher is smaller and slower.",
          range=core.EFFORT, default=core.DEFAULT_EFFORT),
    _crop("cropX", "left edge", OFFSET),
    _crop("cropY", "top edge", OFFSET),
    _crop("cropWidth", "width", PIXELS),
    _crop("cropHeight", "height", PIXELS),
    Field("rotate", "float", "Rotate clockwise by this many degrees.", range=core.ROTATE,
          default=0, group="edits"),
    Field("flip", "bool", "Flip vertically (upside down).", default=False, group="edits"),
    Field("flop", "bool", "Flip horizontally (mirror).", default=False, group="edits"),
    Field("brightness", "float", "Brightness multiplier.", range=core.BRIGHTNESS, default=1,
          group="edits"),
    Field("saturation", "float", "Saturation multiplier.", range=core.SATURATION, default=1,
          group="edits"),
    Field("contrast", "float", "Contrast multiplier.", range=core.CONTRAST, default=1,
          group="edits"),
    Field("grayscale", "bool", "Convert to grayscale.", default=False, group="edits"),
    Field("blur", "float", "Gaussian blur sigma.", range=core.BLUR, default=0,
          group="edits"),
    Field("sharpen", "bool", "Apply the default sharpen.", default=False, group="edits"),
    Field("watermarkFile", "file", "Image placed on every output (PNG with alpha works "
          "best). A key on the free plan: ignored.", cli=None, group="watermark"),
    Field("watermarkScale", "float", "Watermark width in % of the image width.",
          range=core.WATERMARK_SCALE, default=core.DEFAULT_WATERMARK_SCALE,
          group="watermark"),
    Field("watermarkOpacity", "float", "Watermark opacity in %, 0 (invisible) to 100.",
          range=core.WATERMARK_OPACITY, default=core.DEFAULT_WATERMARK_OPACITY,
          group="watermark"),
    Field("watermarkPosition", "choice", "Watermark position: top/middle/bottom × "
          "left/centre/right.", choices=core.POSITIONS, case="upper",
          default=core.DEFAULT_WATERMARK_POSITION, cli=Cli(metavar="POSITION"),
          group="watermark"),
    Field("sessionId", "text", "Groups the results of one session (default: a new id).",
          dialects=ONLY_FLUX, max_length=128, pattern=SESSION_ID,
          pattern_help="must be 1-128 characters without slashes or control characters",
          cli=None, group="session"),
    Field("autoAltText", "bool", "AI alt text for each image (paid plan, one credit per "
          "image).", dialects=ONLY_FLUX, default=False, cli=None, group="ai"),
    Field("autoRenameSEO", "bool", "AI SEO file name for each image (paid plan; with alt "
          "text still one credit).", dialects=ONLY_FLUX, default=False, cli=None, group="ai"),
    Field("language", "choice", "Language of the alt text and names.", dialects=ONLY_FLUX,
          choices=LANGUAGES, case="exact", default=DEFAULT_LANGUAGE, cli=None, group="ai"),
    Field("aiContext", "text", "A short phrase on what the images are for.",
          dialects=ONLY_FLUX, max_length=500, cli=None, group="ai"),
    Field("seoKeywords", "text", "Keywords to guide the alt text and names.",
          dialects=ONLY_FLUX, max_length=500, cli=None, group="ai"),
)


def fields_of(dialect: str, *, files: bool = True) -> dict[str, Field]:
    """The fields one dialect takes, by name, in the table's order."""
    return {f.name: f for f in FIELDS
            if dialect in f.dialects and (files or f.kind != "file")}


def _only(dialect: str) -> frozenset[str]:
    names = {f.name for f in FIELDS if f.dialects == frozenset({dialect})}
    shared = {f.name for f in FIELDS if f.dialects != frozenset({dialect})}
    return frozenset(names - shared)


# Fields that only one dialect has: they tell the dialect of an /api/compress request.
FEATHER_ONLY: frozenset[str] = _only(FEATHER)
FLUX_ONLY: frozenset[str] = _only(FLUX)


class Form(Protocol):
    """What the parser needs of a form: every value given for a name (Werkzeug's MultiDict)."""

    def getlist(self, key: str) -> list[str]: ...


class FormValues:
    """A ``Form`` over a plain mapping of names to values (the command line builds one)."""

    def __init__(self, values: Mapping[str, str | Iterable[str]]) -> None:
        self._values = {k: [v] if isinstance(v, str) else list(v) for k, v in values.items()}

    def getlist(self, key: str) -> list[str]:
        return list(self._values.get(key, []))


Values = dict[str, Any]


def read_values(form: Form, dialect: str) -> Values:
    """Parse the fields of ``dialect`` present in ``form``; one error names every bad one.

    Blank values count as absent (HTML forms send empty inputs); a field given twice
    with different values is an error; the crop fields come all four or none.
    """
    values: Values = {}
    errors: dict[str, str] = {}
    for name, spec in fields_of(dialect, files=False).items():
        raws = [r for r in form.getlist(name) if r.strip() != ""]
        if not raws:
            continue
        if len({r.strip() for r in raws}) > 1:
            errors[name] = "was given more than once with different values"
            continue
        try:
            values[name] = spec.parse(raws[0])
        except BadValue as exc:
            errors[name] = str(exc)
    _check_crop(values, errors)
    if errors:
        raise InvalidOptions("Invalid options", errors)
    return values


_CROP = ("cropX", "cropY", "cropWidth", "cropHeight")


def _check_crop(values: Mapping[str, Any], errors: dict[str, str]) -> None:
    if any(n in values for n in _CROP) and not all(n in values for n in _CROP):
        for name in _CROP:
            if name not in values and name not in errors:
                errors[name] = "is required when cropping (give all four crop fields)"


def default(name: str, dialect: str = FEATHER) -> Any:
    """The documented default of a field."""
    return fields_of(dialect)[name].default


def compress_options(values: Mapping[str, Any], dialect: str, *, convert: bool = False,
                     watermark: bytes | None = None,
                     accept: frozenset[str] | None = None) -> CompressOptions:
    """The core options of a request in ``dialect`` (``convert``: /api/convert's rules).

    ``accept``: the image types the client shows, for ``outputFormat=auto`` (None: any).
    """
    if dialect == FLUX:
        fmt = values.get("format", FLUX_DEFAULT_FORMAT)
        output_format = "jpeg" if fmt == "jpg" else fmt
    else:
        output_format = values.get("outputFormat", default("outputFormat"))
        if convert and output_format == "auto":
            raise InvalidOptions(
                "outputFormat is required for /api/convert",
                {"outputFormat": "is required and must be one of "
                                 + ", ".join(c for c in core.OUTPUT_CHOICES if c != "auto")})
    crop = None
    if "cropX" in values:
        crop = Crop(values["cropX"], values["cropY"], values["cropWidth"], values["cropHeight"])
    # Edits left out stay None (not their neutral value), so that an untouched image
    # can be returned as it came.
    edits = Edits(
        crop=crop,
        rotate=values.get("rotate", 0.0),
        flip=values.get("flip", False),
        flop=values.get("flop", False),
        brightness=values.get("brightness"),
        saturation=values.get("saturation"),
        contrast=values.get("contrast"),
        grayscale=values.get("grayscale", False),
        blur=values.get("blur"),
        sharpen=values.get("sharpen", False),
    )
    mark = None
    if watermark:
        mark = Watermark(
            image=watermark,
            scale=values.get("watermarkScale", core.DEFAULT_WATERMARK_SCALE),
            opacity=values.get("watermarkOpacity", core.DEFAULT_WATERMARK_OPACITY),
            position=values.get("watermarkPosition", core.DEFAULT_WATERMARK_POSITION),
        )
    target_mb = None if convert else values.get("targetMB")
    quality = values.get("quality", default("quality", dialect))
    level = quality if isinstance(quality, str) else None
    return CompressOptions(
        output_format=output_format,
        quality=default("quality", dialect) if level else quality,
        quality_level=level,
        accept=accept,
        # FluxImage's document: "PNG uses lossless compression regardless of this value".
        lossless=dialect == FLUX and output_format == "png",
        max_width=values.get("maxWidth"),
        max_height=values.get("maxHeight"),
        strip_metadata=values.get("stripMetadata", True),
        target_bytes=None if target_mb is None else max(1, int(target_mb * 1_000_000)),
        mode=values.get("mode", "final"),
        progressive=values.get("progressive"),
        effort=values.get("effort"),
        edits=edits,
        watermark=mark,
    )


def ai_ask(values: Mapping[str, Any]) -> AiAsk:
    """The AI fields of a FluxImage request."""
    return AiAsk(alt_text=values.get("autoAltText", False),
                 rename=values.get("autoRenameSEO", False),
                 language=values.get("language", DEFAULT_LANGUAGE),
                 context=values.get("aiContext", ""),
                 keywords=values.get("seoKeywords", ""))


__all__ = ["BOTH", "FEATHER", "FEATHER_ONLY", "FIELDS", "FLUX", "FLUX_ONLY", "BadValue",
           "Cli", "Field", "Form", "FormValues", "MAX_BATCH_FILES", "Values",
           "ai_ask", "compress_options", "default", "fields_of", "parse_bool", "read_values"]
