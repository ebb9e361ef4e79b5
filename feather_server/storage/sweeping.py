"""Expired outputs are deleted by `flask sweep` and, automatically, after batches.

The automatic sweep runs at most every SWEEP_INTERVAL seconds per host, in a
background thread, by whichever worker takes the lock first.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from filelock import FileLock, Timeout

from feather_server.settings import Settings
from feather_server.storage.base import Store, StoreError

SWEEP_INTERVAL = 600
log = logging.getLogger("feather.storage")
_last_sweep = 0.0
_guard = threading.Lock()


def sweep_now(store: Store, settings: Settings) -> int:
    """Sweep under the host's sweep lock; returns how many outputs were deleted."""
    folder = Path(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".sweep.lock"), timeout=60):
        deleted = store.sweep()
        (folder / ".last-sweep").write_text(str(int(time.time())))
        return deleted


def _due(settings: Settings) -> bool:
    try:
        last = int((Path(settings.data_dir) / ".last-sweep").read_text())
    except (OSError, ValueError):
        return True
    return time.time() - last > SWEEP_INTERVAL


def maybe_sweep(store: Store, settings: Settings) -> None:
    """Start a background sweep when one is due; never blocks the request."""
    global _last_sweep
    with _guard:
        if time.monotonic() - _last_sweep < SWEEP_INTERVAL and _last_sweep:
            return
        _last_sweep = time.monotonic()
    if not _due(settings):
        return

    def run() -> None:
        try:
            lock = FileLock(str(Path(settings.data_dir) / ".sweep.lock"), timeout=0)
            with lock:
                deleted = store.sweep()
                (Path(settings.data_dir) / ".last-sweep").write_text(str(int(time.time())))
            if deleted:
                log.info("swept %d expired outputs", deleted)
        except Timeout:
            pass  # another worker is sweeping
        except (StoreError, OSError):
            log.exception("sweeping expired outputs failed")

    threading.Thread(target=run, name="feather-sweep", daemon=True).start()
