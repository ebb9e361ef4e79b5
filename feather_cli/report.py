"""What a run prints: a table of the files written, the totals, every failure; or JSON."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any, TextIO

from feather_cli.run import FileResult


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


def print_summary(outcomes: list[FileResult], *, quiet: bool, out: TextIO = sys.stdout,
                  err: TextIO = sys.stderr) -> None:
    """A table of the files written, the totals, and every failure with its reason."""
    done = [o for o in outcomes if o.ok]
    failures = [o for o in outcomes if not o.ok]
    rows: list[tuple[str, ...]] = []
    if not quiet:
        for o in done:
            assert o.original_bytes is not None
            assert o.output_bytes is not None
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


def summary_json(outcomes: list[FileResult]) -> dict[str, Any]:
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

