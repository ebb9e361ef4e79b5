"""`feather compress` and `feather convert`: files, folders and globs, on every core."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from feather_cli.files import collect_inputs, plan_tasks
from feather_cli.options import build_cli_options, cli_limits, cli_settings, field_options
from feather_cli.report import print_summary, summary_json
from feather_cli.run import FileResult, refused, run_all
from feather_core.options import CompressOptions
from feather_core.runner import JobRunner, default_memory_limit


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


@click.command()
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


@click.command()
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
    if in_place and out_dir is not None:
        raise click.UsageError("--in-place and --output exclude each other")
    limits = cli_limits()
    settings = cli_settings()
    inputs, missing = collect_inputs(paths)
    tasks, rejected = plan_tasks(inputs, asked_format=options.output_format,
                                 out_dir=out_dir, in_place=in_place)
    results: list[FileResult] = [refused(r) for r in (*missing, *rejected)]
    processes = min(jobs or os.cpu_count() or 1, max(1, len(tasks)))
    memory = (settings.max_job_memory_mb * 1024 * 1024 if settings.max_job_memory_mb
              else default_memory_limit(settings.max_pixels))
    runner = JobRunner(processes, memory)
    show_bar = sys.stderr.isatty() and not as_json and len(tasks) > 1
    try:
        with click.progressbar(length=len(tasks), label=label, file=sys.stderr,
                               show_pos=True) if show_bar else _NoBar() as bar:
            for result in run_all(runner, tasks, options, limits):
                results.append(result)
                bar.update(1)
    finally:
        runner.close()
    order = {t.display: i for i, t in enumerate(tasks)}
    results.sort(key=lambda o: order.get(o.input, -1))
    if as_json:
        click.echo(json.dumps(summary_json(results), indent=2))
    else:
        print_summary(results, quiet=quiet)
    if not results:
        raise click.ClickException("no image files found")
    if any(not o.ok for o in results):
        sys.exit(1)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, steps: int) -> None:
        del steps
