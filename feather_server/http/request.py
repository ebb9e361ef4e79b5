"""The request class: bodies read as they arrive, within limits and in bounded time.

- A multipart body is parsed while it is read (``feather_server.http.multipart``): a
  file part is cut off the moment it passes ``MAX_UPLOAD_MB``, a body whose
  ``Content-Length`` is more than the endpoint may take is refused before a byte of
  it is read, and the request keeps at most an image and its watermark in memory;
  further file parts (a batch) go to a private spool folder, removed when the request
  ends. So a worker's memory grows by about twice ``MAX_UPLOAD_MB`` at most, whatever
  is sent.
- Under gunicorn, every read of the body waits at most ``BODY_TIMEOUT_MS`` for bytes
  (a timeout on the socket gunicorn hands the app), then the answer is 408: a client
  that stalls mid-body cannot hold a worker.
- A malformed chunked body (a bad chunk size, a missing CRLF, the connection closed
  mid-chunk) makes gunicorn's reader raise mid-read: that is the client's fault, told as
  400 ``INVALID_INPUT`` in JSON, not a server error.
- Parts stay in memory rather than in Werkzeug's temporary files (which wrote every
  photo over 500 KB to disk and read it back), and the body is read in 1 MB chunks,
  which costs gunicorn's reader no copies of what it already holds.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from flask import Request, current_app, g, request
from gunicorn.http.errors import ParseException
from werkzeug.datastructures import ImmutableMultiDict

from feather_server.errors import ApiError
from feather_server.http import dialect
from feather_server.http.multipart import (
    BodyStalled,
    FileTooLarge,
    FormLimits,
    FormTooLarge,
    SpoolFailed,
    StreamedForm,
    read_form,
)
from feather_server.http.spool import new_spool, remove_spool
from feather_server.settings import Settings

_T = TypeVar("_T")
log = logging.getLogger("feather.request")


class FeatherRequest(Request):
    #: File parts of a request kept in memory (an image and its watermark); the
    #: rest are spooled to disk. An endpoint that takes a batch sets 0.
    memory_file_parts = 2

    def __init__(self, environ: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(environ, *args, **kwargs)
        self._spool: Path | None = None
        sock = environ.get("gunicorn.socket")
        body = environ.get("wsgi.input")
        if isinstance(sock, socket.socket) and body is not None \
                and not isinstance(body, _TimedBody):
            environ["wsgi.input"] = _TimedBody(body, sock)

    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        if self.mimetype != "multipart/form-data" \
                or getattr(self, "_cached_data", None) is not None:
            super()._load_form_data()
            return
        form = self._read_multipart()
        self._set_form(form)
        # Werkzeug leaves the consumed stream as ``request.stream``; it is empty.
        self.__dict__["stream"] = io.BytesIO()

    def _read_multipart(self) -> StreamedForm:
        settings: Settings = current_app.config["FEATHER"]
        limits = FormLimits(max_file=settings.max_upload_bytes,
                            max_body=self.max_content_length,
                            max_fields=self.max_form_memory_size,
                            max_parts=self.max_form_parts,
                            memory_files=self.memory_file_parts)
        boundary = self.mimetype_params.get("boundary", "").encode("latin-1", "replace")
        length = self.content_length
        if length is None and not self.environ.get("wsgi.input_terminated"):
            # A body of unknown length from a server that does not end it (gunicorn
            # does): reading could wait forever, so it is empty, as Werkzeug has it.
            return StreamedForm(malformed=True)
        body: IO[bytes] = self.environ["wsgi.input"]
        try:
            return read_form(body.read, boundary, length, limits, self._spool_dir,
                             self._dialect_known)
        except FormTooLarge as exc:
            raise ApiError("FILE_TOO_LARGE", str(exc)) from None
        except SpoolFailed as exc:
            log.error("spooling an upload failed: %s", exc)
            raise ApiError("SERVICE_UNAVAILABLE",
                           "The upload could not be stored for processing") from None
        except FileTooLarge as exc:
            self._set_form(exc.form)
            raise self._file_too_large(exc.filename, settings) from None
        except BodyStalled as exc:
            if exc.form is not None:
                self._set_form(exc.form)
                if g.get("dialect") is None and dialect.is_flux_request(self):
                    g.dialect = "flux"
            raise

    def _set_form(self, form: StreamedForm) -> None:
        self.__dict__["form"] = ImmutableMultiDict(form.fields)
        self.__dict__["files"] = ImmutableMultiDict(form.files)

    def _dialect_known(self, form: StreamedForm) -> bool:
        """Whether what was read so far fixes the dialect of an error answer."""
        if g.get("dialect") is not None:
            return True
        self._set_form(form)
        try:
            return dialect.is_flux_request(self)
        finally:
            del self.__dict__["form"], self.__dict__["files"]

    def _file_too_large(self, filename: str, settings: Settings) -> ApiError:
        if g.get("dialect") is None and dialect.is_flux_request(self):
            g.dialect = "flux"
        if g.get("dialect") == "flux":  # the FluxImage document's row, name and all
            message = f"File {filename or 'image'} exceeds the {settings.max_upload_mb:g}MB limit"
            return ApiError("FILE_TOO_LARGE", message, status=400, flux_error=message)
        return ApiError("FILE_TOO_LARGE",
                        f"The file exceeds the {settings.max_upload_mb:g} MB upload limit")

    def _spool_dir(self) -> Path:
        if self._spool is None:
            settings: Settings = current_app.config["FEATHER"]
            self._spool = new_spool(settings.data_dir)
        return self._spool

    def close(self) -> None:
        """Close the uploads and remove the spool folder (Flask calls this at the end)."""
        try:
            super().close()
        finally:
            if self._spool is not None:
                remove_spool(self._spool)
                self._spool = None


def spool_every_file() -> None:
    """Send every file part of the current request to its spool folder: for an endpoint
    that takes a batch, whose files job processes read from there. Call it before
    anything reads the form."""
    current = request._get_current_object()  # type: ignore[attr-defined]
    if isinstance(current, FeatherRequest):
        current.memory_file_parts = 0


class BodyTimeout(ApiError, BodyStalled):
    """408: the client sent nothing of its body for ``BODY_TIMEOUT_MS``."""

    def __init__(self, seconds: float) -> None:
        super().__init__("REQUEST_TIMEOUT",
                         f"The request body stopped arriving (nothing for {seconds:g} s)")


class _TimedBody:
    """gunicorn's request body, each read waiting at most ``BODY_TIMEOUT_MS`` for bytes.

    Every reader of the body (the multipart reader, Werkzeug's form and JSON parsing)
    then gets the 408 ``BodyTimeout``. The timeout is set on the socket for the read
    and taken off after it, so gunicorn writes the response as it always does.
    """

    def __init__(self, body: IO[bytes], sock: socket.socket) -> None:
        self._body = body
        self._sock = sock

    def read(self, size: int | None = -1) -> bytes:
        return self._timed(self._body.read, -1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._timed(self._body.readline, -1 if size is None else size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._timed(self._body.readlines, -1 if hint is None else hint)

    def __iter__(self) -> _TimedBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _timed(self, read: Callable[[int], _T], size: int) -> _T:
        settings: Settings = current_app.config["FEATHER"]
        seconds = settings.body_timeout_ms / 1000
        previous = self._sock.gettimeout()
        self._sock.settimeout(seconds)
        try:
            return read(size)
        except TimeoutError:
            raise BodyTimeout(seconds) from None
        except (ParseException, OSError) as exc:
            raise ApiError("INVALID_INPUT", "The request body is malformed (its chunked "
                           "encoding is broken or cut short)") from exc
        finally:
            with contextlib.suppress(OSError):  # the client is gone: nothing to restore
                self._sock.settimeout(previous)

