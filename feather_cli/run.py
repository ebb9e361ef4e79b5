"""Running planned compressions in job processes, and what came of each.

Each task runs in a job process of ``feather_core.runner`` (the server's mechanism:
a memory ceiling per job, a crash in a codec takes down one job process and not the
run) and calls the same ``feather_core.compress`` the API calls, so a file compressed
here is byte for byte the file the API returns for the same options. The job process
reads its input and writes its output itself: outputs go to a temporary file in the
target folder and are renamed, so an interrupted run never leaves a half-written image
under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path

from feather_cli.files import Rejected, Task
from feather_core import CompressOptions, Limits, compress
from feather_core.errors import FeatherError
from feather_core.runner import Job, JobRunner


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
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None


def refused(rejected: Rejected) -> FileResult:
    return FileResult(rejected.display, None, None, None, error_code=rejected.code,
                      error_message=rejected.message)


def run_task(task: Task, options: CompressOptions, limits: Limits) -> FileResult:
    """Compress one file and write its output; every failure becomes a ``FileResult``.

    Runs in a job process.
    """
    original: int | None = None
    try:
        data = task.source.read_bytes()
        original = len(data)
        result = compress(data, options, limits)
        output = task.output
        if output.suffix != "." + result.format.extension and output != task.source:
            output = output.with_suffix("." + result.format.extension)
        _write_atomically(output, result.data)
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
        task.display, str(output), result.original_bytes, result.output_bytes,
        format=result.format.name, width=result.width, height=result.height,
        unchanged=result.unchanged, target_met=result.target_met,
    )


def _failed(task: Task, original: int | None, exc: FeatherError) -> FileResult:
    message = exc.message
    if exc.details:
        message += " (" + "; ".join(f"{k}: {v}" for k, v in exc.details.items()) + ")"
    return FileResult(task.display, None, original, None, error_code=exc.code,
                      error_message=message)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".feather-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def run_all(runner: JobRunner, tasks: list[Task], options: CompressOptions, limits: Limits
            ) -> Iterator[FileResult]:
    """Results as tasks finish, on the runner's job processes."""
    pending: dict[Job, Task] = {
        runner.submit_call(run_task, task, options, limits): task for task in tasks
    }
    while pending:
        futures = {job.future: job for job in pending}
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        for future in done:
            job = futures[future]
            task = pending.pop(job)
            try:
                yield job.result()
            except FeatherError as exc:  # the job process died (memory, a codec's crash)
                yield _failed(task, None, exc)
