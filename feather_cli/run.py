"""Running planned compressions, in parallel processes, and reporting them.

Each task runs the same ``feather_core.compress`` the API runs, so a file compressed
here is byte for byte the file the API returns for the same options. Outputs are
written to a temporary file in the target folder and renamed, so an interrupted run
never leaves a half-written image under the final name.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from feather_cli.files import Rejected, Task
from feather_core import CompressOptions, Limits, compress
from feather_core.allocator import keep_freed_memory
from feather_core.errors import FeatherError


@dataclass(frozen=True)
class Outcome:
    """What happened to one input."""

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


def failed(rejected: Rejected) -> Outcome:
    return Outcome(rejected.display, None, None, None, error_code=rejected.code,
                   error_message=rejected.message)


def run_task(task: Task, options: CompressOptions, limits: Limits) -> Outcome:
    """Compress one file and write its output; every failure becomes an Outcome."""
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
        message = exc.message
        if exc.details:
            message += " (" + "; ".join(f"{k}: {v}" for k, v in exc.details.items()) + ")"
        return Outcome(task.display, None, original, None, error_code=exc.code,
                       error_message=message)
    except OSError as exc:
        code = "READ_ERROR" if original is None else "WRITE_ERROR"
        where = f": {exc.filename}" if exc.filename else ""
        return Outcome(task.display, None, original, None, error_code=code,
                       error_message=f"{exc.strerror or exc}{where}")
    except Exception as exc:  # noqa: BLE001 - one bad file must not sink the others
        return Outcome(task.display, None, original, None, error_code="INTERNAL_ERROR",
                       error_message=f"{type(exc).__name__}: {exc}")
    return Outcome(
        task.display, str(output), result.original_bytes, result.output_bytes,
        format=result.format.name, width=result.width, height=result.height,
        unchanged=result.unchanged, target_met=result.target_met,
    )


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


def run_all(tasks: list[Task], options: CompressOptions, limits: Limits, jobs: int
            ) -> Iterator[Outcome]:
    """Outcomes as tasks finish; ``jobs`` processes (1 runs in this process)."""
    keep_freed_memory()
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield run_task(task, options, limits)
        return
    # Processes, not threads: encoders hold the GIL for part of their work, and a
    # crash in a codec takes down one worker, not the run.
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)),
                             initializer=keep_freed_memory) as pool:
        pending: dict[Future[Outcome], Task] = {
            pool.submit(run_task, task, options, limits): task for task in tasks
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    yield future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory)
                    yield Outcome(task.display, None, None, None, error_code="INTERNAL_ERROR",
                                  error_message=f"worker failed: {type(exc).__name__}: {exc}")


def human_bytes(count: int) -> str:
    """Bytes in the units the API uses (1 MB = 1,000,000 bytes)."""
    if count < 1000:
        return f"{count} B"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def saving(before: int, after: int) -> str:
    if before <= 0:
        return "-"
    return f"{100 * (before - after) / before:.1f}%"


def print_summary(outcomes: list[Outcome], *, quiet: bool, out: TextIO = sys.stdout,
                  err: TextIO = sys.stderr) -> None:
    """A table of the files written, the totals, and every failure with its reason."""
    done = [o for o in outcomes if o.ok]
    failures = [o for o in outcomes if not o.ok]
    rows: list[tuple[str, ...]] = []
    if not quiet:
        for o in done:
            assert o.original_bytes is not None and o.output_bytes is not None
            note = " (unchanged)" if o.unchanged else ""
            rows.append((o.input, f"{o.output}{note}", human_bytes(o.original_bytes),
                         human_bytes(o.output_bytes),
                         saving(o.original_bytes, o.output_bytes)))
    before = sum(o.original_bytes or 0 for o in done)
    after = sum(o.output_bytes or 0 for o in done)
    total = (f"{len(done)} file{'s' if len(done) != 1 else ''}", f"{len(failures)} failed",
             human_bytes(before), human_bytes(after), saving(before, after) if done else "-")
    header = ("input", "output", "before", "after", "saving")
    _table([header, *rows, total], out, total_line=True)
    for o in failures:
        print(f"FAILED {o.input}: {o.error_code}: {o.error_message}", file=err)


def _table(rows: list[tuple[str, ...]], out: TextIO, *, total_line: bool) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = {2, 3, 4}

    def line(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    print(line(rows[0]), file=out)
    print(rule, file=out)
    for row in rows[1:-1]:
        print(line(row), file=out)
    if total_line:
        if len(rows) > 2:
            print(rule, file=out)
        print(line(rows[-1]), file=out)


def summary_json(outcomes: list[Outcome]) -> dict[str, Any]:
    done = [o for o in outcomes if o.ok]
    return {
        "files": len(done),
        "failed": len(outcomes) - len(done),
        "originalBytes": sum(o.original_bytes or 0 for o in done),
        "outputBytes": sum(o.output_bytes or 0 for o in done),
        "results": [{camel_case(k): v for k, v in asdict(o).items() if v is not None}
                    for o in outcomes],
    }


def camel_case(name: str) -> str:
    """JSON keys in the API's spelling: output_bytes -> outputBytes."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)

