"""The request class: uploads parsed into memory, not spooled to temporary files."""

from __future__ import annotations

import io
from typing import IO

from flask import Request


class FeatherRequest(Request):
    """Werkzeug spools file parts over 500 KB to a temporary file, so every photo was
    written to disk and read back before decoding. The body is already capped by
    MAX_CONTENT_LENGTH and every upload is read into memory anyway, so parts go to
    memory directly (a few milliseconds per photo, and no disk I/O)."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()
