"""The request class: uploads read in one go and parsed in memory."""

from __future__ import annotations

import io
from typing import IO

from flask import Request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadRequest


class FeatherRequest(Request):
    """Two costs of the default request handling, both a few milliseconds per photo,
    and one fault below the form parser:

    - Werkzeug spools file parts over 500 KB to a temporary file, so every photo was
      written to disk and read back. The body is capped by MAX_CONTENT_LENGTH and each
      upload is read into memory anyway, so parts go to memory directly.
    - The multipart parser reads the body 64 KB at a time; gunicorn's reader, asked
      for 64 KB while it already holds the rest of the body, copies that rest on every
      call, which is quadratic in the upload's size. The body is read in one call
      instead and the parser reads from memory.
    - A malformed chunked body makes gunicorn's reader raise mid-read; that is a bad
      request (400 INVALID_INPUT), not a server error.
    """

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()

    def _load_form_data(self) -> None:
        super()._load_form_data()
        # Werkzeug keeps the parsed stream as ``request.stream``; here that is a copy of
        # the whole body, which would stay alive while the image is decoded. The form
        # and files hold everything it said.
        if isinstance(self.__dict__.get("stream"), _ParsedBody):
            self.__dict__["stream"] = io.BytesIO()

    def _get_stream_for_parsing(self) -> IO[bytes]:
        if getattr(self, "_cached_data", None) is not None:
            return super()._get_stream_for_parsing()
        length = self.content_length
        stream = self.stream  # refuses a body over MAX_CONTENT_LENGTH before reading it
        parts: list[bytes] = []
        received = 0
        try:
            # Without a length (chunked), read to the end: the stream stops at
            # MAX_CONTENT_LENGTH with 413.
            while length is None or received < length:
                part = stream.read(length - received if length else _CHUNKED_READ)
                if not part:
                    break  # the client went away; the parser reports the truncated form
                parts.append(part)
                received += len(part)
        except (ParseException, OSError) as exc:
            # gunicorn's parser of the chunked body (a bad chunk size, a missing CRLF, the
            # connection closed mid-chunk): the client's fault, told as 400 in JSON.
            raise BadRequest("The request body is malformed (its chunked encoding is "
                             "broken or cut short)") from exc
        return _ParsedBody(b"".join(parts))


_CHUNKED_READ = 1 << 20


class _ParsedBody(io.BytesIO):
    """The request body read in one call, for the multipart parser."""
