"""Running planned compressions in job processes, and what came of each.

Each task runs in a job process of ``feather_core.runner`` (the server's mechanism:
a memory ceiling per job, a crash in a codec takes down one job process and not the
run) and calls the same ``feather_core.compress`` the API calls, so a file compressed
here is byte for byte the file the API returns for the same options. The job process
reads its input and writes its output itself: outputs go to a temporary file beside
the target and are renamed, so an interrupted run never leaves a half-written image
under the final name.

When the format was not asked for (``auto``), the smaller file is kept: an output
larger than its input is made again in the input's own format, and when that is
still larger and nothing but compression was asked, the input itself is kept
(metadata stripped as asked). Job processes ignore Ctrl-C: the command line stops
them itself (``Interrupt``), so a Ctrl-C never leaves a traceback per process.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from feather_cli.files import Rejected, Skipped, Task, shown
from feather_core import CompressOptions, CompressResult, Limits, compress
from feather_core.errors import FeatherError
from feather_core.formats import FORMATS, OUTPUT_NAMES
from feather_core.inspect import inspect_image
from feather_core.metadata import strip_metadata
from feather_core.runner import Job, JobRunner

# How often the main loop looks for a Ctrl-C while it waits for jobs.
_POLL_S = 0.05


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file."""

    input: str
    output: str | None
    original_bytes: int | None
    output_bytes: int | None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    unchanged: bool = False
    target_met: bool | None = None
    # Why the output is not what was first made: "input format" (the input's format
    # was smaller than auto's pick) or "original" (the input itself was smaller).
    kept: str | None = None
    skipped: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None

    @property
    def written(self) -> bool:
        return self.ok and self.skipped is None

    @property
    def grew(self) -> bool:
        return (self.written and self.original_bytes is not None
                and self.output_bytes is not None and self.output_bytes > self.original_bytes)


def refused(rejected: Rejected) -> FileResult:
    return FileResult(rejected.display, None, None, None, error_code=rejected.code,
                      error_message=rejected.message)


def left_alone(skipped: Skipped) -> FileResult:
    return FileResult(skipped.display, skipped.output, None, None, skipped=skipped.reason)


def ignore_interrupts() -> None:
    """Job-process setup: Ctrl-C reaches the whole process group; the command line
    handles it and stops the job processes itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(frozen=True)
class Made:
    """The bytes to write, and how they were chosen."""

    result: CompressResult
    kept: str | None = None
    extension: str | None = None  # of the input, when the input itself is kept


def compress_smallest(data: bytes, options: CompressOptions, limits: Limits,
                      keep_smaller: bool) -> Made:
    """``compress``; with ``keep_smaller``, never more bytes than the input when another
    choice the options allow is smaller (see the module's docstring)."""
    result = compress(data, options, limits)
    if not keep_smaller or result.output_bytes <= len(data):
        return Made(result)
    best = Made(result)
    own = result.input_format
    if own in OUTPUT_NAMES and own != result.format.name:
        again = compress(data, replace(options, output_format=own), limits)
        if again.output_bytes < best.result.output_bytes:
            best = Made(again, kept="input format")
    if best.result.output_bytes <= len(data):
        return best
    untouched = (not best.result.resized and not options.edits.any
                 and options.watermark is None)
    if untouched:
        original = _original_as_asked(data, own, options)
        if original is not None and len(original) < best.result.output_bytes:
            kept = replace(result, data=original, format=FORMATS[own], quality=None,
                           unchanged=True)
            return Made(kept, kept="original")
    return best


def _original_as_asked(data: bytes, fmt: str, options: CompressOptions) -> bytes | None:
    """The input itself, its metadata stripped when asked; None when it cannot be."""
    if not options.strip_metadata:
        return data
    stripped = strip_metadata(data, fmt)
    if stripped is not None:
        return stripped
    return None if _carries_metadata(data, fmt) else data


# TIFF tags that say something of the picture's origin (a TIFF's own structure is tags
# too): EXIF and GPS folders, XMP, IPTC, description, camera, software, date, artist,
# computer, copyright.
_TIFF_METADATA_TAGS = frozenset({0x8769, 0x8825, 700, 33723, 270, 271, 272, 305, 306, 315,
                                 316, 33432})


def _carries_metadata(data: bytes, fmt: str) -> bool:
    """Whether an input that cannot be stripped losslessly holds EXIF, XMP or the like."""
    if fmt == "tiff":
        with Image.open(io.BytesIO(data)) as image:
            return bool(_TIFF_METADATA_TAGS & set(image.getexif()))
    found = inspect_image(data, Limits())
    return found.has_exif or found.has_xmp


def run_task(task: Task, options: CompressOptions, limits: Limits,
             keep_smaller: bool = False) -> FileResult:
    """Compress one file and write its output; every failure becomes a ``FileResult``.

    Runs in a job process.
    """
    original: int | None = None
    try:
        data = task.source.read_bytes()
        original = len(data)
        made = compress_smallest(data, options, limits, keep_smaller)
        result = made.result
        output = task.output
        extension = (task.source.suffix.lstrip(".") if made.kept == "original"
                     else result.format.extension)
        if output.suffix.lower() != "." + extension.lower():
            output = output.with_suffix("." + extension)  # named after what it holds
        if output.resolve() != task.source.resolve() or made.kept != "original":
            _write_atomically(output, result.data, task.partial)
        if task.remove_source and output.resolve() != task.source.resolve():
            task.source.unlink()
    except FeatherError as exc:
        return _failed(task, original, exc)
    except OSError as exc:
        code = "READ_ERROR" if original is None else "WRITE_ERROR"
        where = f": {exc.filename}" if exc.filename else ""
        return FileResult(task.display, None, original, None, error_code=code,
                          error_message=f"{exc.strerror or exc}{where}")
    return FileResult(
        task.display, shown(output), result.original_bytes, result.output_bytes,
        format=result.format.name, width=result.width, height=result.height,
        unchanged=result.unchanged, target_met=result.target_met, kept=made.kept,
    )


def _failed(task: Task, original: int | None, exc: FeatherError) -> FileResult:
    message = exc.message
    if exc.details:
        message += " (" + "; ".join(f"{k}: {v}" for k, v in exc.details.items()) + ")"
    return FileResult(task.display, None, original, None, error_code=exc.code,
                      error_message=message)


def _write_atomically(path: Path, data: bytes, partial: Path | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = partial or path.with_name(f".{path.name}.{os.getpid()}.feather-part")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class Interrupt:
    """Ctrl-C while a run works: the first stops the run (the loop below sees it within
    ``_POLL_S``), the second ends the process at once, whatever it is doing."""

    EXIT_STATUS = 130  # 128 + SIGINT, as shells report it

    def __init__(self, on_second: Callable[[], None] | None = None) -> None:
        self.event = threading.Event()
        self._on_second = on_second
        self._previous: object = None

    def __enter__(self) -> Interrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        del signum, frame
        if self.event.is_set():
            with contextlib.suppress(OSError):
                os.write(2, b"\nStopped at once (second Ctrl-C): no summary.\n")
            kill_job_processes()
            if self._on_second is not None:
                self._on_second()
            os._exit(self.EXIT_STATUS)
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


def written_meanwhile(task: Task, since_ns: int) -> FileResult | None:
    """The output a job wrote (renamed into place) while the run was being stopped, before
    its result could be reported; None when it wrote none."""
    extensions = {"webp", "jpg", "png", "avif", task.source.suffix.lstrip(".")}
    candidates = {task.output, *(task.output.with_suffix(f".{e}") for e in extensions if e)}
    for path in sorted(candidates):
        try:
            made = path.stat()
            original = task.source.stat().st_size
        except OSError:
            continue
        if made.st_mtime_ns >= since_ns and path.resolve() != task.source.resolve():
            fmt = path.suffix.lstrip(".").lower()
            return FileResult(task.display, shown(path), original, made.st_size,
                              format={"jpg": "jpeg", "tif": "tiff"}.get(fmt, fmt))
    return None


def kill_job_processes() -> None:
    """SIGKILL every process this one started, and theirs (the job processes and their
    fork server), but multiprocessing's resource tracker, which tidies up after them.

    Linux's /proc tells the family; elsewhere the job processes end with their parent.
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # pid (comm) state ppid ...: comm may hold spaces and parentheses.
                fields = stat.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    family, grown = {os.getpid()}, True
    while grown:
        found = {pid for pid, parent in parents.items() if parent in family} - family
        grown = bool(found)
        family |= found
    family.discard(os.getpid())
    for pid in family:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"resource_tracker" in cmdline.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def run_all(runner: JobRunner, tasks: list[Task], options: CompressOptions, limits: Limits,
            keep_smaller: bool = False, interrupt: Interrupt | None = None
            ) -> Iterator[FileResult]:
    """Results as tasks finish, on the runner's job processes; stops at an interrupt
    (the jobs left are cancelled by the caller's ``runner.close()``)."""
    pending: dict[Job, Task] = {}
    for task in tasks:
        if interrupt is not None and interrupt.requested:
            return
        pending[runner.submit_call(run_task, task, options, limits, keep_smaller)] = task
    while pending:
        futures = {job.future: job for job in pending}
        done, _ = wait(futures, timeout=_POLL_S, return_when=FIRST_COMPLETED)
        if interrupt is not None and interrupt.requested:
            # What finished is reported; what runs is the caller's to stop.
            for job in [job for job in pending if job.done()]:
                try:
                    yield job.result(timeout=0)
                except FeatherError:
                    continue
            return
        for future in done:
            job = futures[future]
            task = pending.pop(job)
            try:
                yield job.result()
            except FeatherError as exc:  # the job process died (memory, a codec's crash)
                yield _failed(task, None, exc)
