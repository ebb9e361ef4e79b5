"""HMAC-signed, expiring Feather URLs for stored outputs and session zips.

A URL carries ``expires`` (Unix time) and ``signature`` = HMAC-SHA256 over the path
and the expiry. A wrong signature is 403; a right one past its expiry is 410, so a
user can tell a broken link from an old one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from feather_server.errors import ApiError
from feather_server.settings import Settings

SECRET_FILE = "secret_key"


def load_secret(settings: Settings) -> bytes:
    """SECRET_KEY, or one generated on first use and kept in DATA_DIR.

    Created with O_EXCL so that several workers starting at once agree on one key,
    and every restart keeps the links it signed.
    """
    if settings.secret_key:
        return settings.secret_key.encode()
    folder = Path(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
    for _ in range(100):
        text = path.read_text().strip()
        if text:  # another worker may be between its O_EXCL and its write
            return text.encode()
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it or set SECRET_KEY")


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
        """Raise 403 FORBIDDEN for a bad signature, 410 GONE for an expired one."""
        if not expires_raw or not signature or not expires_raw.isdigit():
            raise ApiError("FORBIDDEN", "The download link is not valid")
        expires = int(expires_raw)
        if not hmac.compare_digest(self.signature(path, expires), signature):
            raise ApiError("FORBIDDEN", "The download link is not valid")
        if (time.time() if now is None else now) > expires:
            raise ApiError("GONE", "The download link has expired")
