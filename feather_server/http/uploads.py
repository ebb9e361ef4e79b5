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
