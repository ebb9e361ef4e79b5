"""Private folders for the file parts of a request that do not stay in memory.

Each request that spools gets its own folder, ``DATA_DIR/uploads/<pid>-<random>``
(mode 0700), removed when the request ends. A worker that dies mid-request (killed
at gunicorn's timeout, say) cannot remove its folders; gunicorn's master removes
them in ``child_exit``, and at start-up removes those of processes that no longer
exist. This module imports nothing but the standard library, so the master can use
it without loading the app.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

FOLDER = "uploads"


def spool_root(data_dir: str) -> Path:
    return Path(data_dir).resolve() / FOLDER


def new_spool(data_dir: str) -> Path:
    """A new private folder for one request's uploads, named after this process."""
    root = spool_root(data_dir)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))


def remove_spool(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def remove_spools(data_dir: str, pid: int | None = None) -> int:
    """Remove the folders of process ``pid``, or of every process that is gone.

    Returns how many folders were removed.
    """
    root = spool_root(data_dir)
    try:
        entries = list(root.iterdir())
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        owner, _, _ = entry.name.partition("-")
        if not owner.isdigit():
            continue
        if (int(owner) == pid) if pid is not None else not _alive(int(owner)):
            remove_spool(entry)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
