"""The `feather` command line: the API's compression on your own disk.

Options are generated from the API's field table (``feather_server.schema``) and parsed by the
same parser, so ``--max-width`` means what ``maxWidth`` means, is checked against the
same range, and builds the same ``CompressOptions``: a file compressed here is byte
for byte what ``POST /api/compress`` returns for the same fields.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from werkzeug.datastructures import MultiDict

from feather_server.schema import FEATHER_FIELDS, Field, feather_options, parse_bool
from feather_core import Limits, __version__
from feather_core.errors import FeatherError, InvalidOptions
from feather_core.options import CompressOptions

# What each API field does, in the API document's words; the order is --help's order.
FIELD_HELP: dict[str, str] = {
    "outputFormat": "Output format: auto (default: keep JPEG/PNG/WebP/AVIF, others become "
                    "WebP), jpeg, png, webp or avif.",
    "quality": "Encoder quality 1-100 (default 80; PNG is lossless).",
    "maxWidth": "Resize down so width <= this (keeps aspect, never enlarges).",
    "maxHeight": "Resize down so height <= this (keeps aspect, never enlarges).",
    "targetMB": "Fit each output under this many MB (1 MB = 1,000,000 bytes): quality "
                "first, then size.",
    "stripMetadata": "Strip EXIF/IPTC/XMP (default) or keep them; colours are kept either way.",
    "mode": "final (default) or preview (faster, larger).",
    "progressive": "Progressive JPEG.",
    "effort": "WebP/AVIF/PNG effort 0-9 (default 4; higher is smaller and slower).",
    "cropX": "Crop rectangle on the upright source: left edge (give all four crop options).",
    "cropY": "Crop: top edge.",
    "cropWidth": "Crop: width.",
    "cropHeight": "Crop: height.",
    "rotate": "Rotate by degrees, -360 to 360.",
    "flip": "Flip vertically (upside down).",
    "flop": "Flip horizontally (mirror).",
    "brightness": "Brightness multiplier 0.1-3.",
    "saturation": "Saturation multiplier 0-3.",
    "contrast": "Contrast multiplier 0.1-3.",
    "grayscale": "Convert to grayscale.",
    "blur": "Gaussian blur sigma 0-10.",
    "sharpen": "Apply the default sharpen.",
    "watermarkScale": "Watermark width in % of the image width, 5-50 (default 20).",
    "watermarkOpacity": "Watermark opacity 0-100 (default 80).",
    "watermarkPosition": "Watermark position TL TC TR ML MC MR BL BC BR (default BR).",
}

# Boolean fields with an explicit off switch, because their default is not "off".
_PAIRED_FLAGS = {"stripMetadata": "keep-metadata", "progressive": "no-progressive"}
_SHORT = {"outputFormat": ("-f", "--format"), "quality": ("-q",)}


def option_name(field: str) -> str:
    """The CLI spelling of an API field: maxWidth -> max-width, targetMB -> target-mb."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", field).lower()


def _param(field: str) -> str:
    return option_name(field).replace("-", "_")


_CHOICE_METAVARS = {"outputFormat": "FORMAT", "mode": "final|preview",
                    "watermarkPosition": "POSITION"}


def _metavar(spec: Field) -> str:
    if spec.name in _CHOICE_METAVARS:
        return _CHOICE_METAVARS[spec.name]
    if spec.low is not None and spec.high is not None and spec.high < 1_000_000:
        return f"{spec.low:g}..{spec.high:g}"
    return "MB" if spec.name == "targetMB" else "PIXELS"


def field_options(exclude: tuple[str, ...] = (), required: tuple[str, ...] = ()
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """click options for every API field, named like the fields, in FIELD_HELP's order."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(list(FIELD_HELP)):
            if name in exclude or name not in FEATHER_FIELDS:
                continue
            spec = FEATHER_FIELDS[name]
            long = "--" + option_name(name)
            if spec.parse is parse_bool:
                if name in _PAIRED_FLAGS:
                    decls = [f"{long}/--{_PAIRED_FLAGS[name]}"]
                    option = click.option(*decls, _param(name), default=None,
                                          help=FIELD_HELP[name])
                else:
                    option = click.option(long, _param(name), is_flag=True, default=False,
                                          help=FIELD_HELP[name])
            else:
                # Values stay text here: the API's parser reads them, with its messages.
                option = click.option(long, *_SHORT.get(name, ()), _param(name), type=str,
                                      default=None, metavar=_metavar(spec),
                                      required=name in required, help=FIELD_HELP[name])
            command = option(command)
        return command

    return decorate


def form_from(values: Mapping[str, Any]) -> MultiDict[str, str]:
    """The form fields a request with the same options would send."""
    form: MultiDict[str, str] = MultiDict()
    for name in FEATHER_FIELDS:
        value = values.get(_param(name))
        if value is None or value is False and name not in _PAIRED_FLAGS:
            continue
        form.add(name, ("true" if value else "false") if isinstance(value, bool) else value)
    return form


def build_cli_options(values: Mapping[str, Any], *, convert: bool,
                      watermark: Path | None) -> CompressOptions:
    """Parse CLI values exactly as the API parses a form; usage error naming bad options."""
    watermark_bytes = watermark.read_bytes() if watermark else None
    try:
        return feather_options(form_from(values), convert=convert,
                               watermark_file=watermark_bytes)
    except InvalidOptions as exc:
        problems = "; ".join(f"--{option_name(k)} {v}" for k, v in exc.details.items())
        raise click.UsageError(problems or exc.message) from exc


def cli_limits() -> Limits:
    """The server's pixel and frame limits (same env variables); no time limit."""
    from feather_server.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    return Limits(max_pixels=settings.max_pixels, max_frames=settings.max_frames, timeout=None)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="feather")
def cli() -> None:
    """Feather: compress, convert and inspect images from the command line,
    or run the Feather service."""


def _batch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.argument("paths", nargs=-1, required=True, metavar="PATH..."),
        click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Write outputs under DIR as <name>.<ext>, keeping the folder tree. "
                          "Default: next to each input as <name>-compressed.<ext>."),
        click.option("--in-place", is_flag=True,
                     help="Replace each input with its output (a changed format changes "
                          "the extension and removes the original)."),
        click.option("--watermark-file", type=click.Path(dir_okay=False, exists=True,
                                                         path_type=Path),
                     help="Image (PNG with alpha) placed on every output."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                     help="Files processed at once (default: every CPU core)."),
        click.option("--quiet", is_flag=True, help="Print only the totals and failures."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print the results as JSON on stdout instead of a table."),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


@cli.command()
@_batch_options
@field_options()
def compress(paths: tuple[str, ...], out_dir: Path | None, in_place: bool,
             watermark_file: Path | None, jobs: int | None, quiet: bool, as_json: bool,
             **fields: Any) -> None:
    """Compress images: files, folders (recursively, keeping the tree) and globs.

    Uses every core; a file that fails is reported with its reason and the exit
    status is 1; the others are still written. Inputs are never overwritten
    unless --in-place is given.
    """
    options = build_cli_options(fields, convert=False, watermark=watermark_file)
    _run(paths, options, out_dir, in_place, jobs, quiet, as_json, "Compressing")


@cli.command()
@_batch_options
@field_options(exclude=("targetMB",), required=("outputFormat",))
def convert(paths: tuple[str, ...], out_dir: Path | None, in_place: bool,
            watermark_file: Path | None, jobs: int | None, quiet: bool, as_json: bool,
            **fields: Any) -> None:
    """Convert images to another format (--format is required and not auto),
    like POST /api/convert; takes every other compress option except --target-mb."""
    options = build_cli_options(fields, convert=True, watermark=watermark_file)
    _run(paths, options, out_dir, in_place, jobs, quiet, as_json, "Converting")


def _run(paths: tuple[str, ...], options: CompressOptions, out_dir: Path | None,
         in_place: bool, jobs: int | None, quiet: bool, as_json: bool, label: str) -> None:
    from feather_cli.files import collect_inputs, plan_tasks
    from feather_cli.run import failed, print_summary, run_all, summary_json

    if in_place and out_dir is not None:
        raise click.UsageError("--in-place and --output exclude each other")
    limits = cli_limits()
    inputs, missing = collect_inputs(paths)
    tasks, refused = plan_tasks(inputs, asked_format=options.output_format,
                                out_dir=out_dir, in_place=in_place)
    outcomes = [failed(r) for r in (*missing, *refused)]
    workers = jobs or os.cpu_count() or 1
    show_bar = sys.stderr.isatty() and not as_json and len(tasks) > 1
    with click.progressbar(length=len(tasks), label=label, file=sys.stderr,
                           show_pos=True) if show_bar else _NoBar() as bar:
        for outcome in run_all(tasks, options, limits, workers):
            outcomes.append(outcome)
            bar.update(1)
    order = {t.display: i for i, t in enumerate(tasks)}
    outcomes.sort(key=lambda o: order.get(o.input, -1))
    if as_json:
        click.echo(json.dumps(summary_json(outcomes), indent=2))
    else:
        print_summary(outcomes, quiet=quiet)
    if not outcomes:
        raise click.ClickException("no image files found")
    if any(not o.ok for o in outcomes):
        sys.exit(1)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, steps: int) -> None:
        del steps


@cli.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(files: tuple[Path, ...], as_json: bool) -> None:
    """Describe images: format, size, pixels, orientation, ICC profile, animation.

    Reads headers only. Exit status 1 if a file is not a readable image.
    """
    from dataclasses import asdict

    from feather_core.inspect import inspect_image

    limits = cli_limits()
    reports: list[dict[str, Any]] = []
    bad = False
    for path in files:
        try:
            found = inspect_image(path.read_bytes(), limits)
        except FeatherError as exc:
            bad = True
            reports.append({"file": str(path), "error": {"code": exc.code,
                                                         "message": exc.message}})
            if not as_json:
                click.echo(f"{path}: {exc.code}: {exc.message}", err=True)
            continue
        report = {"file": str(path), **asdict(found), "pixels": found.pixels,
                  "animated": found.animated}
        reports.append(report)
        if not as_json:
            click.echo(_describe(path, report))
    if as_json:
        from feather_cli.run import camel_case

        shown = [{camel_case(k): v for k, v in r.items()} for r in reports]
        click.echo(json.dumps(shown if len(shown) > 1 else shown[0], indent=2))
    if bad:
        sys.exit(1)



_ORIENTATIONS = {
    1: "normal", 2: "mirrored", 3: "rotated 180°", 4: "upside down mirrored",
    5: "mirrored, rotated 90° CCW", 6: "rotated 90° CW", 7: "mirrored, rotated 90° CW",
    8: "rotated 90° CCW",
}


def _describe(path: Path, r: Mapping[str, Any]) -> str:
    from feather_cli.run import human_bytes

    lines = [str(path)]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<12} {text}")

    row("format", f"{r['format']} ({r['mime']})")
    row("size", f"{r['bytes']:,} bytes ({human_bytes(r['bytes'])})")
    row("pixels", f"{r['width']} x {r['height']} ({r['pixels'] / 1e6:.2f} MP)")
    orientation = f"{r['orientation']} ({_ORIENTATIONS.get(r['orientation'], '?')})"
    if r["orientation"] != 1:
        orientation += f"; stored as {r['stored_width']} x {r['stored_height']}"
    row("orientation", orientation)
    row("mode", f"{r['mode']}, {'with' if r['has_alpha'] else 'no'} alpha")
    if r["icc_profile"] is None:
        row("ICC", "none")
    else:
        row("ICC", f"{r['icc_profile'] or '(unnamed)'} ({r['icc_bytes']:,} bytes)")
    if r["animated"]:
        loop = "loops forever" if r["loop"] == 0 else f"plays {r['loop']} more times"
        seconds = (r["duration_ms"] or 0) / 1000
        row("animation", f"{r['frames']} frames, {seconds:.2f} s, {loop}")
    else:
        row("animation", "no")
    metadata = [name for name, present in (("EXIF", r["has_exif"]), ("XMP", r["has_xmp"]))
                if present]
    row("metadata", ", ".join(metadata) or "none")
    return "\n".join(lines)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--host", default=None, help="Address to listen on (default 0.0.0.0; env HOST).")
@click.option("--port", type=int, default=None, help="Port (default 3000; env PORT).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="gunicorn workers (default: one per core; env WEB_CONCURRENCY).")
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(host: str | None, port: int | None, workers: int | None,
          gunicorn_args: tuple[str, ...]) -> None:
    """Run the service with gunicorn, as `make run` does.

    Settings come from the environment (see the README's configuration table);
    anything after the options is passed to gunicorn.
    """
    env = dict(os.environ)
    for name, value in (("HOST", host), ("PORT", port), ("WEB_CONCURRENCY", workers)):
        if value is not None:
            env[name] = str(value)
    os.execvpe(sys.executable, gunicorn_command(env, gunicorn_args), env)


def gunicorn_command(env: Mapping[str, str], extra: tuple[str, ...] = ()) -> list[str]:
    """The gunicorn command line: the project's gunicorn.conf.py when it is there,
    the same settings as flags when Feather was installed without its source tree."""
    command = [sys.executable, "-m", "gunicorn"]
    config = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    if config.is_file():
        command += ["-c", str(config)]
    else:
        timeout = int(env.get("REQUEST_TIMEOUT_MS", "30000")) // 1000 + 30
        command += [
            "--bind", f"{env.get('HOST', '0.0.0.0')}:{env.get('PORT', '3000')}",
            "--workers", env.get("WEB_CONCURRENCY", str(os.cpu_count() or 1)),
            "--timeout", str(timeout), "--graceful-timeout", "30",
            "--access-logfile", "-", "--error-logfile", "-",
        ]
    return [*command, *extra, "feather_server:create_app()"]


class KeysGroup(click.Group):
    """`feather keys ...`: the key and plan commands of ``feather_cli.keys``, loaded on use
    so the image commands start fast and work without the accounts database."""

    def _group(self) -> click.Group | None:
        try:
            from feather_cli import keys as keys_cli
        except ImportError as exc:
            if exc.name not in ("feather_cli.keys", "feather_cli"):
                raise
            return None
        for name in ("keys", "cli", "group", "keys_group"):
            found = getattr(keys_cli, name, None)
            if isinstance(found, click.Group):
                return found
        return None

    def list_commands(self, ctx: click.Context) -> list[str]:
        group = self._group()
        return group.list_commands(ctx) if group else []

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        group = self._group()
        return group.get_command(ctx, cmd_name) if group else None

    def invoke(self, ctx: click.Context) -> Any:
        if self._group() is None:
            raise click.ClickException("key administration is not available: feather_cli.keys "
                                       "is not installed")
        return super().invoke(ctx)


@cli.group(cls=KeysGroup)
def keys() -> None:
    """Create, list, roll, revoke and top up API keys and plans (FluxImage batch API)."""


@cli.command()
def sweep() -> None:
    """Delete expired stored outputs now (the service also sweeps on its own)."""
    from feather_server.settings import Settings

    try:
        from feather_cli.keys import sweep_outputs
    except ImportError as exc:
        raise click.ClickException("stored outputs are not available in this "
                                   "installation") from exc
    deleted = sweep_outputs(Settings.from_env())
    click.echo(f"{deleted} expired output(s) deleted")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (`feather`)."""
    from flask.cli import ScriptInfo

    from feather_server import create_app

    # Commands that need the app (keys, written with Flask's with_appcontext) get the
    # same app `make run` builds, from the environment.
    info_obj = ScriptInfo(create_app=lambda: create_app())
    try:
        cli.main(args=argv, prog_name="feather", obj=info_obj)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["cli", "main", "option_name", "build_cli_options", "gunicorn_command"]
