"""`feather info`: what an image file is, from its headers."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from feather_cli.options import cli_limits
from feather_cli.report import camel_case, human_bytes
from feather_core.errors import FeatherError


@click.command()
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
