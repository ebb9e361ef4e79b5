"""`feather compress` and `feather convert`: files, folders, globs and pipes, on every core."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import click

from feather_cli.files import Layout, Task, collect_inputs, plan_tasks
from feather_cli.options import build_cli_options, cli_limits, cli_settings, field_options
from feather_cli.report import (
    colour_wanted,
    human_bytes,
    print_summary,
    saving,
    summary_json,
    terminal_width,
)
from feather_cli.run import (
    FileResult,
    Interrupt,
    Made,
    compress_smallest,
    ignore_interrupts,
    kill_job_processes,
    left_alone,
    refused,
    run_all,
    written_meanwhile,
)
from feather_core.errors import FeatherError
from feather_core.options import CompressOptions
from feather_core.runner import JobRunner, default_memory_limit

# After a Ctrl-C the job processes get this long to stop before the summary is printed
# and the command exits anyway (their parent's exit takes them down too).
_STOP_GRACE_S = 1.0


def _batch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.argument("paths", nargs=-1, metavar="PATH..."),
        click.option("-o", "--out-dir", "--output", "out_dir", metavar="DIR",
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Write outputs under DIR, keeping the folder tree, as "
                          "<name><suffix>.<ext>. Default: next to each input."),
        click.option("--suffix", default=None, metavar="TEXT",
                     help="Added to each output's name: photo.jpg -> photo<TEXT>.webp. "
                          "Default -compressed next to the input, nothing with --out-dir."),
        click.option("--overwrite", is_flag=True,
                     help="Replace outputs that exist. Without it they are skipped, so a "
                          "second run does only what the first did not."),
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
def compress(paths: tuple[str, ...], out_dir: Path | None, suffix: str | None,
             overwrite: bool, in_place: bool, watermark_file: Path | None, jobs: int | None,
             quiet: bool, as_json: bool, **fields: Any) -> None:
    """Compress images: files, folders (recursively, keeping the tree), globs, or -
    (read stdin, write stdout).

    Uses every core; a file that fails is reported with its reason and the exit
    status is 1; the others are still written. Inputs are never overwritten
    unless --in-place is given, and outputs of an earlier run are skipped unless
    --overwrite is. Without --format the smaller file is kept: the input's own
    format, or the input itself, when auto's output would be larger.

    Ctrl-C stops at once and prints what was done (exit status 130).
    """
    options = build_cli_options(fields, convert=False, watermark=watermark_file)
    keep_smaller = options.output_format == "auto"
    layout = _layout(out_dir, suffix, overwrite, in_place)
    _dispatch(paths, options, layout, jobs, quiet, as_json, "Compressing", keep_smaller)


@click.command()
@_batch_options
@field_options(exclude=("targetMB",), required=("outputFormat",))
def convert(paths: tuple[str, ...], out_dir: Path | None, suffix: str | None,
            overwrite: bool, in_place: bool, watermark_file: Path | None, jobs: int | None,
            quiet: bool, as_json: bool, **fields: Any) -> None:
    """Convert images to another format (--format is required and not auto),
    like POST /api/convert; takes every other compress option except --target-mb."""
    options = build_cli_options(fields, convert=True, watermark=watermark_file)
    layout = _layout(out_dir, suffix, overwrite, in_place)
    _dispatch(paths, options, layout, jobs, quiet, as_json, "Converting", False)


def _layout(out_dir: Path | None, suffix: str | None, overwrite: bool,
            in_place: bool) -> Layout:
    if in_place and out_dir is not None:
        raise click.UsageError("--in-place and --output exclude each other")
    if in_place and suffix is not None:
        raise click.UsageError("--in-place and --suffix exclude each other")
    if suffix is not None and ("/" in suffix or os.sep in suffix):
        raise click.UsageError("--suffix is added to a file name: it cannot hold a slash")
    return Layout(out_dir=out_dir, suffix=suffix, overwrite=overwrite, in_place=in_place)


def _dispatch(paths: tuple[str, ...], options: CompressOptions, layout: Layout,
              jobs: int | None, quiet: bool, as_json: bool, label: str,
              keep_smaller: bool) -> None:
    piped = not paths and not sys.stdin.isatty()
    if paths == ("-",) or piped:
        if layout != Layout():
            raise click.UsageError("- reads stdin and writes stdout: --out-dir, --suffix, "
                                   "--overwrite and --in-place do not apply")
        _run_pipe(options, keep_smaller, as_json)
        return
    if not paths:
        raise click.UsageError("give files, folders or globs, or - to read stdin")
    if "-" in paths:
        raise click.UsageError("- (stdin) cannot be mixed with files")
    _run_files(paths, options, layout, jobs, quiet, as_json, label, keep_smaller)


def _runner(processes: int) -> JobRunner:
    # multiprocessing's resource tracker (started with the job processes) warns of the
    # pool's semaphores when the command ends at a second Ctrl-C: it removes them all the
    # same, so the warning is noise on the user's terminal.
    os.environ.setdefault("PYTHONWARNINGS",
                          "ignore::UserWarning:multiprocessing.resource_tracker")
    settings = cli_settings()
    memory = (settings.max_job_memory_mb * 1024 * 1024 if settings.max_job_memory_mb
              else default_memory_limit(settings.max_pixels))
    return JobRunner(processes, memory, setup=ignore_interrupts)


def _stop(runner: JobRunner, tasks: list[Task]) -> None:
    """Stop every job now (bounded), then remove what interrupted writes left."""
    if not _close_within(runner, _STOP_GRACE_S):
        kill_job_processes()
    _remove_partials(tasks)


def _close_within(runner: JobRunner, seconds: float) -> bool:
    # On a thread, waited for in short steps: a signal may be delivered to any thread,
    # and the main thread runs Python's handler (a second Ctrl-C) only between steps.
    closing = threading.Thread(target=runner.close, name="feather-stop", daemon=True)
    closing.start()
    deadline = time.monotonic() + seconds
    while closing.is_alive() and time.monotonic() < deadline:
        closing.join(0.05)
    return not closing.is_alive()


def _remove_partials(tasks: list[Task]) -> None:
    for task in tasks:
        if task.partial is not None:
            with contextlib.suppress(OSError):
                task.partial.unlink(missing_ok=True)


def _run_files(paths: tuple[str, ...], options: CompressOptions, layout: Layout,
               jobs: int | None, quiet: bool, as_json: bool, label: str,
               keep_smaller: bool) -> None:
    tasks: list[Task] = []
    with Interrupt(on_second=lambda: _remove_partials(tasks)) as interrupt:
        limits = cli_limits()
        inputs, missing = collect_inputs(paths)
        plan = plan_tasks(inputs, asked_format=options.output_format, layout=layout)
        tasks.extend(plan.tasks)
        results: list[FileResult] = [refused(r) for r in (*missing, *plan.rejected)]
        results += [left_alone(s) for s in plan.skipped]
        if interrupt.requested:
            _exit_interrupted()
        processes = min(jobs or os.cpu_count() or 1, max(1, len(tasks)))
        runner = _runner(processes)
        started_ns = time.time_ns() - 1_000_000_000  # file times may be coarser than this
        show_bar = sys.stderr.isatty() and not as_json and len(tasks) > 1
        try:
            with _progress(show_bar, len(tasks), label) as bar:
                for result in run_all(runner, tasks, options, limits, keep_smaller, interrupt):
                    results.append(result)
                    bar.update(1)
        finally:
            if interrupt.requested:
                _stop(runner, tasks)
            else:
                runner.close()
        interrupted = interrupt.requested
        if interrupted:
            reported = {r.input for r in results}
            late = (written_meanwhile(t, started_ns) for t in tasks if t.display not in reported)
            results += [r for r in late if r is not None]
        order = {t.display: i for i, t in enumerate(tasks)}
        results.sort(key=lambda o: order.get(o.input, -1))
        not_done = len(tasks) - sum(1 for r in results if r.input in order)
        if as_json:
            report = summary_json(results)
            if interrupted:
                report["interrupted"] = True
                report["notProcessed"] = not_done
            click.echo(json.dumps(report, indent=2))
        else:
            print_summary(results, quiet=quiet, left_out=len(plan.outputs_left_out),
                          colour=colour_wanted(sys.stdout), width=terminal_width(sys.stdout))
        if interrupted:
            click.echo(f"Interrupted: {not_done} of {len(tasks)} file"
                       f"{'s' if len(tasks) != 1 else ''} not processed.", err=True)
            _exit_interrupted()
    if not results and not plan.outputs_left_out:
        raise click.ClickException("no image files found")
    if any(not o.ok for o in results):
        sys.exit(1)


def _exit_interrupted() -> None:
    # Straight out: nothing of the job pool may hold the exit up (its processes end
    # with their parent).
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(Interrupt.EXIT_STATUS)


def _run_pipe(options: CompressOptions, keep_smaller: bool, as_json: bool) -> None:
    """`feather compress -`: the image from stdin, the output to stdout, as imagemin-cli."""
    out: BinaryIO = sys.stdout.buffer
    if sys.stdout.isatty():
        raise click.UsageError("the image would be written to the terminal: redirect stdout "
                               "(> out.webp) or give files instead of -")
    with Interrupt() as interrupt:
        data = sys.stdin.buffer.read()
        if interrupt.requested:
            _exit_interrupted()
        if not data:
            raise click.ClickException("nothing was read from stdin")
        runner = _runner(1)
        try:
            job = runner.submit_call(compress_smallest, data, options, cli_limits(),
                                     keep_smaller)
            while not job.done():
                if interrupt.event.wait(0.05):
                    if not _close_within(runner, _STOP_GRACE_S):
                        kill_job_processes()
                    click.echo("Interrupted: nothing written.", err=True)
                    _exit_interrupted()
            made: Made = job.result()
        except FeatherError as exc:
            click.echo(f"FAILED -: {exc.code}: {exc.message}", err=True)
            sys.exit(1)
        finally:
            if not interrupt.requested:
                runner.close()
    out.write(made.result.data)
    out.flush()
    _describe_pipe(made, len(data), as_json)


def _describe_pipe(made: Made, original: int, as_json: bool) -> None:
    result = made.result
    if as_json:
        report = {"input": "-", "output": "-", "originalBytes": original,
                  "outputBytes": result.output_bytes, "format": result.format.name,
                  "width": result.width, "height": result.height}
        if made.kept:
            report["kept"] = made.kept
        click.echo(json.dumps(report), err=True)
    elif sys.stderr.isatty():
        click.echo(f"stdin -> stdout: {human_bytes(original)} -> "
                   f"{human_bytes(result.output_bytes)} {result.format.name} "
                   f"({saving(original, result.output_bytes)})", err=True)


class _NoBar:
    def update(self, steps: int) -> None:
        del steps


@contextlib.contextmanager
def _progress(show: bool, length: int, label: str) -> Iterator[Any]:
    if not show:
        yield _NoBar()
        return
    with click.progressbar(length=length, label=label, file=sys.stderr,
                           show_pos=True) as bar:
        yield bar

