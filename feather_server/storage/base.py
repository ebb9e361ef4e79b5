"""What every store offers, and the record of one stored output."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from feather_server.errors import Unavailable


class StoreError(Unavailable):
    """A store could not write or read an object (disk full, bucket unreachable...).

    Answered 503 SERVICE_UNAVAILABLE by the errors registry wherever it is not caught.
    """

    part = "the output store"


@dataclass(frozen=True)
class StoredObject:
    """One stored output: where it lives, what to call it, and when it dies."""

    scope: str  # one folder per (owner, session), an unguessable hash
    object_id: str
    name: str  # the file name the download carries (the response's newName)
    mime: str
    size: int
    expires: int  # Unix time


class Store(Protocol):
    def put(self, scope: str, data: bytes, name: str, mime: str, expires: int) -> StoredObject:
        """Write atomically: afterwards the object is complete, or nothing is left."""

    def get(self, scope: str, object_id: str) -> tuple[StoredObject, bytes] | None:
        """The object and its bytes, or None when missing."""

    def read(self, obj: StoredObject) -> bytes | None:
        """The bytes of a listed object, or None when it was swept meanwhile."""

    def list(self, scope: str) -> list[StoredObject]:
        """Every object of a scope that has not been swept, oldest first."""

    def download_url(self, obj: StoredObject, feather_url: str) -> str:
        """An absolute URL that downloads ``obj`` until it expires.

        ``feather_url`` is the signed Feather URL; stores that serve their own
        objects (S3) return a presigned URL of their own instead.
        """

    def sweep(self, now: float | None = None) -> int:
        """Delete every expired object; return how many were deleted."""

    def check(self) -> None:
        """Raise StoreError unless the store can write and read now (readiness)."""

    def describe(self) -> str:
        """What kind of store this is, for the readiness report ("local", "s3")."""


def new_object_id() -> str:
    return secrets.token_hex(16)


def now() -> int:
    return int(time.time())
