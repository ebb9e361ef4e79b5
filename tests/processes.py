"""Looking at processes from outside, through /proc: what a test or the bench measures."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                         check=False).stdout
    return [int(p) for p in out.split()]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: a gunicorn worker's fork server and job processes."""
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def _stat(pid: int) -> list[str]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rindex(")") + 2:].split()


def cpu_ticks(pid: int, *, reaped_children: bool = False) -> int:
    """User + system CPU of ``pid`` in clock ticks (0 once it is gone); with
    ``reaped_children``, that of the children it has waited for too."""
    fields = _stat(pid)
    if not fields:
        return 0
    wanted = (11, 12, 13, 14) if reaped_children else (11, 12)
    return sum(int(fields[i]) for i in wanted)


def parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def status_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` size in kB (``VmRSS``, ``VmHWM``...); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
