"""Reading uploaded files: size limits and the names users gave them."""

from __future__ import annotations

import io
import os
import unicodedata
from dataclasses import dataclass

from flask import request
from werkzeug.datastructures import FileStorage

from feather_server.errors import ApiError
from feather_server.filenames import content_disposition
from feather_server.settings import current_settings

__all__ = ["Upload", "content_disposition", "optional_upload", "read_upload", "single_upload",
           "uploaded_files"]

_MAX_STEM = 120


@dataclass(frozen=True)
class Upload:
    """An uploaded file read into memory, with the name the user gave it."""

    data: bytes
    filename: str

    @property
    def stem(self) -> str:
        """The name without folders and extension, as the user wrote it (may be non-ASCII)."""
        base = self.filename.replace("\\", "/").rsplit("/", 1)[-1]
        stem, _ = os.path.splitext(base)
        stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] != "C").strip(" .")
        return stem[:_MAX_STEM] or "image"


def read_upload(storage: FileStorage, max_bytes: int) -> Upload:
    """Read one file part, refusing it with 413 FILE_TOO_LARGE past ``max_bytes``."""
    stream = storage.stream
    # Parts are parsed into memory (app/requests.py): take the buffer itself, not a copy.
    data = stream.getvalue() if isinstance(stream, io.BytesIO) else stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError("FILE_TOO_LARGE",
                       f"The file exceeds the {max_bytes / 1_000_000:g} MB upload limit")
    return Upload(data=data, filename=storage.filename or "image")


def uploaded_files(name: str = "file") -> list[FileStorage]:
    """The request's non-empty file parts called ``name``."""
    return [f for f in request.files.getlist(name) if f and (f.filename or f.content_length)]


def single_upload() -> Upload:
    """The request's one ``file``; 400 when there is none, 413 past MAX_UPLOAD_MB."""
    files = uploaded_files()
    if not files:
        raise ApiError("INVALID_INPUT", "A file is required", {"file": "is required"})
    return read_upload(files[0], current_settings().max_upload_bytes)


def optional_upload(name: str) -> Upload | None:
    """The file part ``name`` when the request has one (413 past MAX_UPLOAD_MB)."""
    parts = uploaded_files(name)
    return read_upload(parts[0], current_settings().max_upload_bytes) if parts else None
