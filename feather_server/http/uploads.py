"""Reading uploaded files: size limits and safe names."""

from __future__ import annotations

import io
import os
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

from werkzeug.datastructures import FileStorage

from feather_server.http.errors import ApiError

_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+\-]+")
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


def ascii_name(name: str) -> str:
    """A plain-ASCII version of ``name`` safe inside a quoted header parameter."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    safe = _UNSAFE.sub("_", folded).strip(" ._")
    return safe or "image"


def content_disposition(filename: str) -> str:
    """``attachment; filename="..."`` plus RFC 6266 ``filename*`` when the name is not ASCII."""
    fallback = ascii_name(os.path.splitext(filename)[0]) + os.path.splitext(filename)[1]
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header
