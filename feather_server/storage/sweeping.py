"""Expired outputs are deleted by `flask sweep` and, automatically, after batches.

The automatic sweep runs at most every SWEEP_INTERVAL seconds per host, in a
background thread, by whichever worker takes the lock first. A store whose expiry
the bucket itself handles (``S3_LIFECYCLE``) is not swept. The time of the last
sweep is kept in DATA_DIR/.last-sweep, written atomically; an unreadable stamp only
means a sweep is due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from feather_server.datadir import private_folder, write_atomically
from feather_server.errors import Unavailable
from feather_server.settings import Settings
from feather_server.storage.base import Store, StoreError

SWEEP_INTERVAL = 600
log = logging.getLogger("feather.storage")
_last_sweep = 0.0
_guard = threading.Lock()


def sweep_now(store: Store, settings: Settings) -> int:
    """Sweep under the host's sweep lock; returns how many outputs were deleted."""
    folder = private_folder(Path(settings.data_dir))
    with FileLock(str(folder / ".sweep.lock"), timeout=60):
        deleted = store.sweep()
        _stamp(folder)
        return deleted


def _stamp(folder: Path) -> None:
    write_atomically(folder / ".last-sweep", str(int(time.time())).encode(), 0o600)


def _due(settings: Settings) -> bool:
    try:
        last = int((Path(settings.data_dir) / ".last-sweep").read_bytes().strip())
    except (OSError, ValueError):
        return True
    return time.time() - last > SWEEP_INTERVAL


def maybe_sweep(store: Store, settings: Settings,
                also: Callable[[], object] | None = None) -> None:
    """Start a background sweep when one is due (and ``also``, other housekeeping);
    never blocks the request."""
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
                _stamp(Path(settings.data_dir))
            if deleted:
                log.info("swept %d expired outputs", deleted)
            if also is not None:
                also()
        except Timeout:
            pass  # another worker is sweeping
        except (StoreError, OSError, Unavailable):
            log.exception("sweeping expired outputs failed")

    threading.Thread(target=run, name="feather-sweep", daemon=True).start()
