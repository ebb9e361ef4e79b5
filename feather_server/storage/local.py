"""Outputs in a local folder: DATA_DIR/outputs/<scope>/<id>.bin plus <id>.json.

Writes are atomic: the bytes and then the record are written to temporary files in
the same folder and renamed into place, record last, so a reader that finds the
record finds the whole file; a failed write removes its temporaries. Reads check
what they find: a record that does not parse, or bytes whose length is not the
recorded size, are treated as missing (the link answers 410), never served.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from feather_server.datadir import private_folder
from feather_server.settings import Settings
from feather_server.storage.base import StoredObject, StoreError, new_object_id

# Temporaries older than this belong to a write that died with its worker.
_STALE_TEMP_SECONDS = 3600
# A sweep removes a scope's folder once it is empty, and an empty folder is also one a
# request has just made: a write that finds its folder gone makes it again, this often.
_PUT_TRIES = 3


class LocalStore:
    """A folder of stored outputs, served by Feather's signed download URLs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStore:
        return cls(Path(settings.data_dir) / "outputs")

    def _folder(self, scope: str) -> Path:
        if not scope.isalnum():
            raise StoreError("bad scope")
        return self.root / scope

    def put(self, scope: str, data: bytes, name: str, mime: str, expires: int) -> StoredObject:
        obj = StoredObject(scope=scope, object_id=new_object_id(), name=name, mime=mime,
                           size=len(data), expires=expires)
        folder = self._folder(scope)
        record = json.dumps({"name": name, "mime": mime, "size": len(data),
                             "expires": expires}).encode()
        try:
            for _ in range(_PUT_TRIES - 1):
                try:
                    return self._write(folder, obj, data, record)
                except FileNotFoundError:
                    pass  # another worker's sweep removed the folder, empty: make it again
            return self._write(folder, obj, data, record)
        except OSError as exc:
            raise StoreError(f"could not store the output: {exc.strerror or exc}") from exc

    @staticmethod
    def _write(folder: Path, obj: StoredObject, data: bytes, record: bytes) -> StoredObject:
        """The bytes, then the record, each written whole and renamed into place; on
        failure nothing of the object is left behind."""
        temps: list[str] = []
        try:
            private_folder(folder)
            for suffix, payload in ((".bin", data), (".json", record)):
                fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
                temps.append(temp)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temps[0], folder / f"{obj.object_id}.bin")
            os.replace(temps[1], folder / f"{obj.object_id}.json")
        except OSError:
            for temp in temps:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            with contextlib.suppress(OSError):
                os.unlink(folder / f"{obj.object_id}.bin")
            raise
        return obj

    def _record(self, scope: str, object_id: str) -> StoredObject | None:
        if not object_id.isalnum():
            return None
        try:
            raw = json.loads((self._folder(scope) / f"{object_id}.json").read_bytes())
            fields = (raw["name"], raw["mime"], raw["size"], raw["expires"])
        except (OSError, ValueError, KeyError, TypeError, StoreError):
            return None
        name, mime, size, expires = fields
        if not (isinstance(name, str) and isinstance(mime, str)
                and type(size) is int and type(expires) is int):
            return None
        return StoredObject(scope=scope, object_id=object_id, name=name, mime=mime,
                            size=size, expires=expires)

    def get(self, scope: str, object_id: str) -> tuple[StoredObject, bytes] | None:
        obj = self._record(scope, object_id)
        if obj is None:
            return None
        data = self.read(obj)
        return None if data is None else (obj, data)

    def read(self, obj: StoredObject) -> bytes | None:
        try:
            data = (self._folder(obj.scope) / f"{obj.object_id}.bin").read_bytes()
        except (OSError, StoreError):
            return None
        return data if len(data) == obj.size else None

    def list(self, scope: str) -> list[StoredObject]:
        try:
            folder = self._folder(scope)
            entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        except (OSError, StoreError):
            return []
        found = (self._record(scope, entry.stem) for entry in entries)
        return [obj for obj in found if obj is not None]

    def download_url(self, obj: StoredObject, feather_url: str) -> str:
        return feather_url

    def describe(self) -> str:
        return "local"

    def check(self) -> None:
        """A small file written, synced and removed: a full or read-only disk fails it."""
        try:
            private_folder(self.root)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".tmp-ready-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(b"ready" * 800)
                    handle.flush()
                    os.fsync(handle.fileno())
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(probe)
        except OSError as exc:
            raise StoreError(f"{self.root} is not writable: {exc.strerror or exc}") from exc

    def path_of(self, obj: StoredObject) -> Path:
        return self._folder(obj.scope) / f"{obj.object_id}.bin"

    def sweep(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        deleted = 0
        if not self.root.is_dir():
            return 0
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for record in folder.glob("*.json"):
                obj = self._record(folder.name, record.stem)
                if obj is not None and obj.expires >= now:
                    continue
                # The record goes first: without it the object is already invisible.
                with contextlib.suppress(OSError):
                    record.unlink()
                with contextlib.suppress(OSError):
                    (folder / f"{record.stem}.bin").unlink()
                deleted += 1
            for temp in folder.glob(".tmp-*"):
                with contextlib.suppress(OSError):
                    if now - temp.stat().st_mtime > _STALE_TEMP_SECONDS:
                        temp.unlink()
            for orphan in folder.glob("*.bin"):
                with contextlib.suppress(OSError):
                    if (not (folder / f"{orphan.stem}.json").exists()
                            and now - orphan.stat().st_mtime > _STALE_TEMP_SECONDS):
                        orphan.unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
        return deleted
