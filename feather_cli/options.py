"""The command line's image options, made from the API's field schema.

``--max-width`` is ``maxWidth``: the same help text, checked against the same range by
the same parser, building the same ``CompressOptions``. A file compressed here is byte
for byte what ``POST /api/compress`` returns for the same fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from feather_core import Limits
from feather_core.errors import InvalidOptions
from feather_core.options import CompressOptions
from feather_server import schema
from feather_server.schema import FEATHER, Field
from feather_server.settings import Settings, SettingsError


def option_name(field: str) -> str:
    """The command-line spelling of a field: maxWidth -> max-width, targetMB -> target-mb."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", field).lower()


def _param(field: str) -> str:
    return option_name(field).replace("-", "_")


def cli_fields() -> dict[str, Field]:
    """The Feather fields that are command-line options, in the schema's order."""
    return {name: f for name, f in schema.fields_of(FEATHER, files=False).items()
            if f.cli is not None}


def _metavar(spec: Field) -> str | None:
    assert spec.cli is not None
    if spec.cli.metavar:
        return spec.cli.metavar
    if spec.range is not None:
        return f"{spec.range.low:g}..{spec.range.high:g}"
    return None


def _help(spec: Field) -> str:
    text = spec.help
    if spec.default is not None and spec.kind not in ("bool",):
        text += f" Default {spec.default:g}." if isinstance(spec.default, float) else (
            f" Default {spec.default}.")
    return text


def field_options(exclude: tuple[str, ...] = (), required: tuple[str, ...] = ()
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """click options for every Feather field, in the schema's order."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for name, spec in reversed(list(cli_fields().items())):
            if name in exclude:
                continue
            assert spec.cli is not None
            long = "--" + option_name(name)
            if spec.kind == "bool":
                if spec.cli.off:
                    option = click.option(f"{long}/--{spec.cli.off}", _param(name),
                                          default=None, help=spec.help)
                else:
                    option = click.option(long, _param(name), is_flag=True, default=False,
                                          help=spec.help)
            else:
                # Values stay text here: the API's parser reads them, with its messages.
                option = click.option(long, *spec.cli.flags, _param(name), type=str,
                                      default=None, metavar=_metavar(spec),
                                      required=name in required, help=_help(spec))
            command = option(command)
        return command

    return decorate


def form_from(values: Mapping[str, Any]) -> schema.FormValues:
    """The form fields a request with the same options would send."""
    form: dict[str, str] = {}
    for name, spec in cli_fields().items():
        value = values.get(_param(name))
        if value is None or (value is False and not (spec.cli and spec.cli.off)):
            continue
        form[name] = ("true" if value else "false") if isinstance(value, bool) else value
    return schema.FormValues(form)


def build_cli_options(values: Mapping[str, Any], *, convert: bool,
                      watermark: Path | None) -> CompressOptions:
    """Parse option values exactly as the API parses a form; a usage error names bad ones."""
    try:
        parsed = schema.read_values(form_from(values), FEATHER)
        return schema.compress_options(parsed, FEATHER, convert=convert,
                                       watermark=watermark.read_bytes() if watermark else None)
    except InvalidOptions as exc:
        problems = "; ".join(f"--{option_name(k)} {v}" for k, v in exc.details.items())
        raise click.UsageError(problems or exc.message) from exc


def cli_settings() -> Settings:
    """The service's settings from the environment (the same variables)."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def cli_limits() -> Limits:
    """The server's pixel and frame limits (same environment variables); no time limit."""
    settings = cli_settings()
    return Limits(max_pixels=settings.max_pixels, max_frames=settings.max_frames, timeout=None)
