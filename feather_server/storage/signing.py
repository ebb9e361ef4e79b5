"""HMAC-signed, expiring Feather URLs for stored outputs and session zips.

A URL carries ``expires`` (Unix time) and ``signature`` = HMAC-SHA256 over the path
and the expiry. A wrong signature is 403; a right one past its expiry is 410, so a
user can tell a broken link from an old one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from feather_server.datadir import private_folder, write_atomically
from feather_server.errors import ApiError
from feather_server.settings import Settings

SECRET_FILE = "secret_key"
_GENERATED = re.compile(rb"[0-9a-f]{64}")
# Expiry times are Unix seconds: ten digits until the year 2286. Longer ones are not
# links Feather made (and int() of thousands of digits is refused by Python).
_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger("feather.storage")


class SecretError(RuntimeError):
    """The generated signing key cannot be read or written; the message says what to do."""


def _read_generated(path: Path) -> bytes | None:
    """The key in ``path`` when it is one Feather generated (64 hex digits), else None."""
    try:
        raw = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretError(f"{path} cannot be read ({exc.strerror or exc}): give the "
                          "service's user access to it, or set SECRET_KEY") from exc
    return raw if _GENERATED.fullmatch(raw) else None


def load_secret(settings: Settings, on_repair: Callable[[str], None] | None = None) -> bytes:
    """SECRET_KEY, or one generated on first use and kept in DATA_DIR/secret_key (0600).

    The file is written atomically, so it is whole or absent. A damaged one (empty,
    truncated by a full disk in an older version, edited by hand) is replaced: links
    signed with it stop working, and nothing else depended on it. Several workers
    starting at once agree on one key: the key is made under a lock, and read again
    inside it. Raises SecretError when the key can be neither read nor written.
    """
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.data_dir) / SECRET_FILE
    key = _read_generated(path)
    if key is not None:
        return key
    try:
        folder = private_folder(path.parent)
        with FileLock(str(folder / f".{SECRET_FILE}.lock"), timeout=30):
            key = _read_generated(path)
            if key is not None:
                return key  # another process made it meanwhile
            damaged = path.exists()
            key = secrets.token_hex(32).encode()
            write_atomically(path, key)
    except Timeout as exc:
        raise SecretError(f"{path} is locked by another process for over 30 s: "
                          "check that no stuck feather process holds it") from exc
    except OSError as exc:
        raise SecretError(f"{path} cannot be written ({exc.strerror or exc}): free space "
                          "or fix permissions in DATA_DIR, or set SECRET_KEY") from exc
    if damaged:
        message = (f"{path} was damaged (not a 64-digit hex key) and has been replaced; "
                   "download links signed before no longer work")
        log.warning("%s", message)
        if on_repair is not None:
            on_repair(message)
    return key


class Signer:
    """Signs and verifies (path, expiry) pairs with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def signature(self, path: str, expires: int) -> str:
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def scope(self, owner: str, session_id: str) -> str:
        """The storage folder of one owner's session: unguessable, path-safe."""
        message = f"scope\n{owner}\n{session_id}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def query(self, path: str, expires: int) -> str:
        return f"expires={expires}&signature={self.signature(path, expires)}"

    def verify(self, path: str, expires_raw: str | None, signature: str | None,
               now: float | None = None) -> None:
        """Raise 403 FORBIDDEN for a bad signature, 410 GONE for an expired one.

        Anything that is not the shape Feather writes (non-ASCII digits such as "²",
        which ``str.isdigit`` accepts, percent-encoded bytes, a thousand digits) is a
        bad link, not a server error.
        """
        if (not expires_raw or not signature or not _EXPIRES.fullmatch(expires_raw)
                or not _SIGNATURE.fullmatch(signature)):
            raise ApiError("FORBIDDEN", "The download link is not valid")
        expires = int(expires_raw)
        if not hmac.compare_digest(self.signature(path, expires).encode(),
                                   signature.encode()):
            raise ApiError("FORBIDDEN", "The download link is not valid")
        if (time.time() if now is None else now) > expires:
            raise ApiError("GONE", "The download link has expired")
