"""Names of files as users give them and as downloads carry them."""

from __future__ import annotations

import os
import re
import unicodedata
from urllib.parse import quote

_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+\-]+")


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
