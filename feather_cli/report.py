"""What a run prints: a table of the files written, the totals, every failure; or JSON.

Paths are shown relative to the working folder. On a terminal the table is fitted to
its width (long paths lose their middle, never wrap) and coloured: savings green, a
file that grew red, skipped and unchanged ones dim. No colour when the output is not a
terminal or ``NO_COLOR`` is set (https://no-color.org).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TextIO

from feather_cli.run import FileResult

_ELLIPSIS = "…"


def human_bytes(count: int) -> str:
    """Bytes in the units the API uses (1 MB = 1,000,000 bytes)."""
    if count < 1000:
        return f"{count} B"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def saving(before: int, after: int) -> str:
    """The saving in %, or the growth as ``+N% larger``."""
    if before <= 0:
        return "-"
    if after > before:
        return f"+{100 * (after - before) / before:.1f}% larger"
    return f"{100 * (before - after) / before:.1f}%"


def terminal_width(stream: TextIO) -> int | None:
    """The width to fit the table to: the terminal's, or None when not writing to one."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None
    return shutil.get_terminal_size((100, 24)).columns


def colour_wanted(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _painter(colour: bool) -> Callable[[str, str], str]:
    codes = {"green": "32", "red": "31", "dim": "2", "bold": "1", "yellow": "33"}

    def paint(text: str, style: str) -> str:
        if not colour or not style or not text.strip():
            return text
        return f"\x1b[{codes[style]}m{text}\x1b[0m"

    return paint


def _note(o: FileResult) -> str:
    if o.skipped:
        return " (exists)"
    if o.kept == "original":
        return " (original kept: smaller)"
    if o.kept == "input format":
        return " (input's format: smaller)"
    if o.unchanged:
        return " (unchanged)"
    return ""


def print_summary(outcomes: list[FileResult], *, quiet: bool, out: TextIO = sys.stdout,
                  err: TextIO = sys.stderr, left_out: int = 0, colour: bool = False,
                  width: int | None = None) -> None:
    """A table of the files written, the totals, and every failure with its reason."""
    paint = _painter(colour)
    done = [o for o in outcomes if o.written]
    skipped = [o for o in outcomes if o.skipped]
    failures = [o for o in outcomes if not o.ok]
    rows: list[tuple[tuple[str, ...], str]] = []
    if not quiet:
        for o in outcomes:
            if not o.ok:
                continue
            if o.skipped:
                rows.append(((o.input, f"{o.output or ''}{_note(o)}", "", "", "skipped"), "dim"))
                continue
            assert o.original_bytes is not None
            assert o.output_bytes is not None
            style = "red" if o.grew else ("dim" if o.unchanged else "green")
            rows.append(((o.input, f"{o.output}{_note(o)}", human_bytes(o.original_bytes),
                          human_bytes(o.output_bytes),
                          saving(o.original_bytes, o.output_bytes)), style))
    before = sum(o.original_bytes or 0 for o in done)
    after = sum(o.output_bytes or 0 for o in done)
    counts = f"{len(failures)} failed"
    if skipped:
        counts += f", {len(skipped)} skipped"
    total = (f"{len(done)} file{'s' if len(done) != 1 else ''}", counts,
             human_bytes(before), human_bytes(after), saving(before, after) if done else "-")
    header = ("input", "output", "before", "after", "saving")
    _table(header, rows, total, out, paint, width)
    grown = [o for o in done if o.grew]
    if grown:
        print(paint(f"{len(grown)} file{'s' if len(grown) != 1 else ''} grew: the format "
                    "was asked for, or nothing smaller could be made.", "red"), file=err)
    if skipped:
        print(paint(f"Skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} whose "
                    "output exists (from an earlier run); --overwrite replaces them.", "dim"),
              file=err)
    if left_out:
        print(paint(f"Left out {left_out} file{'s' if left_out != 1 else ''} this run would "
                    "write itself (outputs of an earlier run).", "dim"), file=err)
    for o in failures:
        print(paint(f"FAILED {o.input}: {o.error_code}: {o.error_message}", "red"), file=err)


def _shorten(text: str, width: int) -> str:
    """``text`` in ``width`` characters, its middle replaced by an ellipsis."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + _ELLIPSIS + (text[-tail:] if tail else "")


def _table(header: tuple[str, ...], rows: list[tuple[tuple[str, ...], str]],
           total: tuple[str, ...], out: TextIO, paint: Callable[[str, str], str],
           width: int | None) -> None:
    every = [header, *(r for r, _ in rows), total]
    widths = [max(len(r[i]) for r in every) for i in range(len(header))]
    if width is not None:
        # Fit the two path columns into the terminal: the longer loses first.
        excess = sum(widths) + 2 * (len(widths) - 1) - (width - 1)
        while excess > 0 and max(widths[0], widths[1]) > 12:
            column = 0 if widths[0] >= widths[1] else 1
            widths[column] -= 1
            excess -= 1
    numeric = {2, 3, 4}

    def line(row: tuple[str, ...], style: str = "") -> str:
        cells = []
        for i, (cell, w) in enumerate(zip(row, widths, strict=True)):
            text = _shorten(cell, w)
            text = text.rjust(w) if i in numeric else text.ljust(w)
            cells.append(paint(text, style) if i in (1, 4) else text)
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    print(paint(line(header), "bold"), file=out)
    print(rule, file=out)
    for row, style in rows:
        print(line(row, style), file=out)
    if rows:
        print(rule, file=out)
    print(line(total), file=out)


def summary_json(outcomes: list[FileResult]) -> dict[str, Any]:
    done = [o for o in outcomes if o.written]
    return {
        "files": len(done),
        "failed": sum(1 for o in outcomes if not o.ok),
        "skipped": sum(1 for o in outcomes if o.skipped),
        "originalBytes": sum(o.original_bytes or 0 for o in done),
        "outputBytes": sum(o.output_bytes or 0 for o in done),
        "results": [{camel_case(k): v for k, v in asdict(o).items() if v is not None}
                    for o in outcomes],
    }


def camel_case(name: str) -> str:
    """JSON keys in the API's spelling: output_bytes -> outputBytes."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
