"""The files Feather keeps in DATA_DIR: written atomically, checked when read, private.

- ``write_atomically``: the new content goes to a temporary file in the same folder,
  is flushed to disk and renamed over the old one, so a reader sees the old file or
  the new one, never a half-written one, whatever happens to the writer (a full disk,
  ``kill -9``, a power cut).
- ``private_folder``: DATA_DIR and its subfolders are created 0700 and an existing one
  loses its world bits: it holds the signing key and the accounts.
- ``check_data_dir``: run once when the service starts (gunicorn's ``on_starting``).
  What is safe to rebuild is rebuilt (the signing key, the rate-limit counters); what
  is not (the accounts database) stops start-up with a message naming the file and
  what to do.

The SQLite files are SQLite's own business: its journal makes every transaction atomic.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import tempfile
import time
from pathlib import Path

from feather_server.settings import Settings

log = logging.getLogger("feather.datadir")

#: Files holding keys or accounts: owner only.
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700
DATABASE_FILE = "feather.db"
COUNTERS_FILE = "ratelimit.sqlite3"


class DataDirError(RuntimeError):
    """A file in DATA_DIR is damaged and cannot be rebuilt safely, or cannot be written.

    A RuntimeError, so gunicorn prints the message and exits when it is raised while
    the service starts.
    """


def private_folder(path: Path) -> Path:
    """``path`` (and its missing parents) created 0700; an existing one loses its world bits."""
    missing = []
    walk = path
    while not walk.exists() and walk != walk.parent:
        missing.append(walk)
        walk = walk.parent
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_FOLDER_MODE, exist_ok=True)
    try:
        info = path.stat()
        if info.st_mode & 0o007 and info.st_uid == os.geteuid():
            path.chmod(stat.S_IMODE(info.st_mode) & ~0o007)
    except OSError:
        pass  # not ours to change (a shared folder set up by the operator)
    return path


def write_atomically(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace ``path`` with ``data`` in one step; on failure ``path`` is unchanged.

    Raises OSError (ENOSPC...) after removing the temporary file.
    """
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    # The rename is durable once the folder's entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only unless it exists (SQLite then keeps the mode,
    and gives its -wal and -shm files the same)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


def make_private(path: Path) -> None:
    """Remove group and world bits from an existing file of ours."""
    with contextlib.suppress(OSError):
        info = path.stat()
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            path.chmod(stat.S_IMODE(info.st_mode) & ~0o077)


def sqlite_damage(path: Path) -> str | None:
    """Why the SQLite file at ``path`` is unusable, or None when it is sound.

    Opened read-only, so checking never creates or changes anything.
    """
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        rows = connection.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        connection.close()
    verdict = "; ".join(str(row[0]) for row in rows)
    return None if verdict == "ok" else verdict


def check_data_dir(settings: Settings) -> list[str]:
    """Check and repair DATA_DIR before the workers start; returns what was repaired.

    Raises DataDirError naming the file and what to do when something cannot be
    repaired safely.
    """
    from feather_server.storage.signing import SECRET_FILE, SecretError, load_secret

    folder = Path(settings.data_dir)
    repaired: list[str] = []
    try:
        private_folder(folder)
    except OSError as exc:
        raise DataDirError(f"DATA_DIR {folder} cannot be created ({exc.strerror or exc}): "
                           "create it, writable by the service's user") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataDirError(f"DATA_DIR {folder} is not writable by this user: "
                           "give the service's user write access to it")

    if not settings.secret_key:
        secret = folder / SECRET_FILE
        make_private(secret)
        try:
            load_secret(settings, on_repair=repaired.append)
        except SecretError as exc:
            raise DataDirError(str(exc)) from exc

    if not settings.database_url:
        database = folder / DATABASE_FILE
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            make_private(path)
        if database.exists():
            damage = sqlite_damage(database)
            if damage is not None:
                raise DataDirError(
                    f"{database} (the accounts database) is damaged: {damage}. Stop the "
                    f"service, restore the file from a backup, or move it aside to start "
                    f"with an empty database (every key and its usage is then lost).")

    if not settings.redis_url:
        counters = folder / COUNTERS_FILE
        make_private(counters)
        if counters.exists() and (damage := sqlite_damage(counters)) is not None:
            # Counters are disposable: a rebuilt file only restarts everyone's minute.
            aside = counters.with_name(f"{COUNTERS_FILE}.damaged-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{counters}{suffix}", f"{aside}{suffix}")
            repaired.append(f"{counters} was damaged ({damage}); moved to {aside.name}, "
                            "a new one is created on first use")
    for line in repaired:
        log.warning("%s", line)
    return repaired
