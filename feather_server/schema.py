"""The form fields of both API dialects: one table, one parser, at the edge.

Everything a request may say is parsed here, once, into feather_core's frozen
options; a bad value anywhere gives one 400 INVALID_INPUT whose ``details`` name
every bad field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict

from feather_server import settings
from feather_core.errors import InvalidOptions
from feather_core.options import (
    DEFAULT_QUALITY,
    MODES,
    OUTPUT_CHOICES,
    POSITIONS,
    CompressOptions,
    Crop,
    Edits,
    Watermark,
)


class _Bad(ValueError):
    pass


def parse_bool(raw: str) -> bool:
    try:
        return settings.parse_bool(raw)
    except ValueError:
        raise _Bad("must be true or false (also 1/0, on/off)") from None


def parse_int(raw: str) -> int:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise _Bad("must be an integer") from None
    if not math.isfinite(value) or value != int(value):
        raise _Bad("must be an integer")
    return int(value)


def parse_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _Bad("must be a number") from None
    if not math.isfinite(value):
        raise _Bad("must be a finite number")
    return value


def parse_choice(choices: tuple[str, ...], aliases: Mapping[str, str] | None = None
                 ) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower() if choices != POSITIONS else raw.strip().upper()
        value = (aliases or {}).get(value, value)
        if value not in choices:
            raise _Bad("must be one of " + ", ".join(choices))
        return value

    return parse


@dataclass(frozen=True)
class Field:
    """One form field: its name, how to parse it, and its allowed range."""

    name: str
    parse: Callable[[str], Any]
    low: float | None = None
    high: float | None = None


def _fields(*items: Field) -> dict[str, Field]:
    return {f.name: f for f in items}


# Fields both dialects accept: resizing, edits and the watermark.
COMMON_FIELDS = _fields(
    Field("maxWidth", parse_int, 1, 1_000_000),
    Field("maxHeight", parse_int, 1, 1_000_000),
    Field("stripMetadata", parse_bool),
    Field("targetMB", parse_float, 0.000001, 10_000),
    Field("mode", parse_choice(MODES)),
    Field("progressive", parse_bool),
    Field("effort", parse_int, 0, 9),
    Field("cropX", parse_int, 0, 1_000_000),
    Field("cropY", parse_int, 0, 1_000_000),
    Field("cropWidth", parse_int, 1, 1_000_000),
    Field("cropHeight", parse_int, 1, 1_000_000),
    Field("rotate", parse_float, -360, 360),
    Field("flip", parse_bool),
    Field("flop", parse_bool),
    Field("brightness", parse_float, 0.1, 3),
    Field("saturation", parse_float, 0, 3),
    Field("contrast", parse_float, 0.1, 3),
    Field("grayscale", parse_bool),
    Field("blur", parse_float, 0, 10),
    Field("sharpen", parse_bool),
    Field("watermarkScale", parse_float, 5, 50),
    Field("watermarkOpacity", parse_float, 0, 100),
    Field("watermarkPosition", parse_choice(POSITIONS)),
)

FEATHER_FIELDS = {
    **COMMON_FIELDS,
    **_fields(
        Field("outputFormat", parse_choice(OUTPUT_CHOICES, {"jpg": "jpeg"})),
        Field("quality", parse_int, 1, 100),
    ),
}

FLUX_FIELDS = {
    **COMMON_FIELDS,
    **_fields(
        Field("format", parse_choice(("webp", "avif", "jpg", "png"), {"jpeg": "jpg"})),
        Field("quality", parse_int, 40, 100),
    ),
}

FLUX_DEFAULT_FORMAT = "webp"
FLUX_DEFAULT_QUALITY = 82


def read_fields(form: MultiDict[str, str], table: Mapping[str, Field]) -> dict[str, Any]:
    """Parse the fields of ``table`` present in ``form``; raise one error for all bad ones.

    Empty values count as absent (HTML forms send empty inputs); a field given twice
    with different values is an error.
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, spec in table.items():
        raws = [r for r in form.getlist(name) if r.strip() != ""]
        if not raws:
            continue
        if len(set(r.strip() for r in raws)) > 1:
            errors[name] = "was given more than once with different values"
            continue
        try:
            value = spec.parse(raws[0])
        except _Bad as exc:
            errors[name] = str(exc)
            continue
        if spec.low is not None and spec.high is not None and not (
            spec.low <= value <= spec.high
        ):
            errors[name] = f"must be between {spec.low:g} and {spec.high:g}"
            continue
        values[name] = value
    _check_crop(values, errors)
    if errors:
        raise InvalidOptions("Invalid options", errors)
    return values


def _check_crop(values: Mapping[str, Any], errors: dict[str, str]) -> None:
    names = ("cropX", "cropY", "cropWidth", "cropHeight")
    given = [n for n in names if n in values]
    if given and len(given) < 4:
        for name in names:
            if name not in values and name not in errors:
                errors[name] = "is required when cropping (give all four crop fields)"


def build_options(
    values: Mapping[str, Any],
    *,
    output_format: str,
    quality: int,
    watermark_file: bytes | None = None,
    ignore_target: bool = False,
) -> CompressOptions:
    """Turn parsed field values into core options (feather_core validates again)."""
    crop = None
    if "cropX" in values:
        crop = Crop(values["cropX"], values["cropY"], values["cropWidth"], values["cropHeight"])
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
    watermark = None
    if watermark_file:
        watermark = Watermark(
            image=watermark_file,
            scale=values.get("watermarkScale", 20),
            opacity=values.get("watermarkOpacity", 80),
            position=values.get("watermarkPosition", "BR"),
        )
    target_mb = None if ignore_target else values.get("targetMB")
    return CompressOptions(
        output_format=output_format,
        quality=quality,
        max_width=values.get("maxWidth"),
        max_height=values.get("maxHeight"),
        strip_metadata=values.get("stripMetadata", True),
        target_bytes=None if target_mb is None else max(1, int(target_mb * 1_000_000)),
        mode=values.get("mode", "final"),
        progressive=values.get("progressive"),
        effort=values.get("effort"),
        edits=edits,
        watermark=watermark,
    )


def feather_options(form: MultiDict[str, str], *, convert: bool = False,
                    watermark_file: bytes | None = None) -> CompressOptions:
    """Options of a Feather-dialect request (/api/compress or, with ``convert``, /api/convert)."""
    values = read_fields(form, FEATHER_FIELDS)
    output_format = values.get("outputFormat", "auto")
    if convert and output_format == "auto":
        raise InvalidOptions(
            "outputFormat is required for /api/convert",
            {"outputFormat": "is required and must be one of jpeg, png, webp, avif"},
        )
    return build_options(values, output_format=output_format,
                         quality=values.get("quality", DEFAULT_QUALITY),
                         watermark_file=watermark_file, ignore_target=convert)


def flux_options(form: MultiDict[str, str], watermark_file: bytes | None = None
                 ) -> CompressOptions:
    """Options of a FluxImage-dialect request (``format`` jpg/webp/avif/png, quality 40-100)."""
    values = read_fields(form, FLUX_FIELDS)
    fmt = values.get("format", FLUX_DEFAULT_FORMAT)
    return build_options(values, output_format="jpeg" if fmt == "jpg" else fmt,
                         quality=values.get("quality", FLUX_DEFAULT_QUALITY),
                         watermark_file=watermark_file)


def uploaded_files(files: MultiDict[str, FileStorage], name: str = "file") -> list[FileStorage]:
    """The non-empty file parts called ``name``."""
    return [f for f in files.getlist(name) if f and (f.filename or f.content_length)]
