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
    """An uploaded file, with the name the user gave it.

    It is either in memory (``data``) or spooled to the request's private folder
    (``path``, removed when the request ends): the request keeps an image and its
    watermark in memory and spools the files of a batch (``feather_server.http.request``).
    ``read()`` gives the bytes either way; a job process can open ``path`` itself.
    """

    filename: str
    data: bytes | None = None
    path: str | None = None
    size: int = -1

    def __post_init__(self) -> None:
        if (self.data is None) == (self.path is None):
            raise ValueError("an upload has either data or a path")
        if self.size < 0:
            size = len(self.data) if self.data is not None else os.path.getsize(str(self.path))
            object.__setattr__(self, "size", size)

    def read(self) -> bytes:
        """The file's bytes (read from the spool folder when it is there)."""
        if self.data is not None:
            return self.data
        with open(str(self.path), "rb") as file:
            return file.read()

    @property
    def stem(self) -> str:
        """The name without folders and extension, as the user wrote it (may be non-ASCII)."""
        base = self.filename.replace("\\", "/").rsplit("/", 1)[-1]
        stem, _ = os.path.splitext(base)
        stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] != "C").strip(" .")
        return stem[:_MAX_STEM] or "image"


def read_upload(storage: FileStorage, max_bytes: int) -> Upload:
    """One file part as an ``Upload``, refusing it with 413 FILE_TOO_LARGE past ``max_bytes``.

    The request reader has already cut off any part past ``MAX_UPLOAD_MB``; the check
    here holds for a smaller ``max_bytes``.
    """
    stream = storage.stream
    filename = storage.filename or "image"
    if isinstance(stream, io.BytesIO):
        # In memory: take the buffer itself, not a copy.
        upload = Upload(filename=filename, data=stream.getvalue())
    elif isinstance(getattr(stream, "name", None), str) and os.path.isfile(stream.name):
        upload = Upload(filename=filename, path=stream.name)
    else:
        upload = Upload(filename=filename, data=stream.read(max_bytes + 1))
    if upload.size > max_bytes:
        raise ApiError("FILE_TOO_LARGE",
                       f"The file exceeds the {max_bytes / 1_000_000:g} MB upload limit")
    return upload


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
