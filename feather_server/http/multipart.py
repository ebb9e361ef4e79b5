"""Reading a multipart/form-data body as it arrives, with a limit on every part.

Werkzeug's incremental decoder (``MultipartDecoder``) finds the parts; this module
decides where each part's bytes go and stops the moment a limit is passed:

- a file part goes to memory while the request has memory slots left (an image and
  its watermark), else to a file in the request's private spool folder; past
  ``max_file`` bytes it is cut off (``FileTooLarge``), nothing more of it is kept;
- non-file fields together may hold ``max_fields`` bytes, and the whole body
  ``max_body``; past either, ``FormTooLarge``;
- the body is read ``READ_CHUNK`` bytes at a time: large reads cost gunicorn's
  reader no copies of what it already holds (64 KB reads cost it three times the
  CPU), and bound what one read adds to memory; the decoder is fed 256 KB slices.

Nothing here knows HTTP answers: the request class turns these exceptions into them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from werkzeug.datastructures import FileStorage, Headers
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

# Below the size a worker maps on its own (feather_core.allocator): read buffers come
# from the heap and are used again, instead of costing fresh pages at every read.
READ_CHUNK = 256 << 10
# The decoder scans and copies what it holds several times over: slices that stay in
# the CPU's cache parse three times faster than whole 1 MB chunks.
PARSE_SLICE = 256 << 10


@dataclass(frozen=True)
class FormLimits:
    """What one multipart body may carry."""

    max_file: int  # bytes of each file part
    max_body: int | None = None  # bytes of the whole body
    max_fields: int | None = 500_000  # bytes of all non-file fields together
    max_parts: int | None = 1000
    memory_files: int = 2  # file parts kept in memory; the rest are spooled


@dataclass
class StreamedForm:
    """The parts read so far (all of them once ``read_form`` returns)."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, FileStorage]] = field(default_factory=list)
    malformed: bool = False  # not multipart as sent, or cut short: parsed as empty


class FormTooLarge(Exception):
    """The body, its fields or its number of parts passed a limit."""


class FileTooLarge(Exception):
    """A file part passed ``max_file``; ``form`` holds what was read up to the answer."""

    def __init__(self, name: str, filename: str, form: StreamedForm) -> None:
        super().__init__(f"file part {name!r} ({filename!r}) is too large")
        self.name = name
        self.filename = filename
        self.form = form


class SpoolFailed(Exception):
    """A file part could not be written to the spool folder (a full disk, say)."""


class BodyStalled(Exception):
    """Reading the body timed out (raised by the read function given to ``read_form``).

    ``read_form`` sets ``form`` to what was read before.
    """

    form: StreamedForm | None = None


@dataclass
class _Part:
    name: str
    headers: Headers
    storage: FileStorage | None = None  # None for a field
    sink: IO[bytes] | None = None  # where a file part's bytes go; None: discarded
    path: Path | None = None  # a spooled part's file
    chunks: list[bytes] = field(default_factory=list)  # a field's bytes
    size: int = 0


def read_form(read: Callable[[int], bytes], boundary: bytes, length: int | None,
              limits: FormLimits, spool: Callable[[], Path],
              dialect_known: Callable[[StreamedForm], bool]) -> StreamedForm:
    """Read and parse the body; every part's bytes within its limit.

    ``read(n)`` returns up to n bytes (b"" at the end) or raises ``BodyStalled``;
    ``spool()`` gives the request's spool folder (made on first use). When a file part
    is too large and ``dialect_known(form so far)`` is False, the rest of the body is
    read, discarding file bytes, for at most ``max_file`` more bytes or until the
    dialect is known, so the answer can be given in the request's dialect.
    """
    if length is not None and limits.max_body is not None and length > limits.max_body:
        raise FormTooLarge(f"The request body ({length / 1_000_000:.1f} MB) exceeds the "
                           f"{limits.max_body / 1_000_000:g} MB a request may carry")
    reader = _FormReader(limits, spool)
    try:
        return _read(reader, read, boundary, length, limits, dialect_known)
    except BaseException:
        reader.close_all()
        raise


def _read(reader: _FormReader, read: Callable[[int], bytes], boundary: bytes,
          length: int | None, limits: FormLimits,
          dialect_known: Callable[[StreamedForm], bool]) -> StreamedForm:
    decoder = MultipartDecoder(boundary)
    received = 0
    try:
        while True:
            want = READ_CHUNK if length is None else min(READ_CHUNK, length - received)
            try:
                chunk = read(want) if want > 0 else b""
            except BodyStalled as exc:
                if reader.too_large is not None:  # the answer is known already
                    raise reader.overflow() from None
                exc.form = reader.form
                raise
            received += len(chunk)
            if limits.max_body is not None and received > limits.max_body:
                raise FormTooLarge(f"The request body exceeds the "
                                   f"{limits.max_body / 1_000_000:g} MB a request may carry")
            if not chunk:
                decoder.receive_data(None)
                reader.consume(decoder, dialect_known)
                break
            if _feed(decoder, reader, chunk, b"--" + boundary, dialect_known):
                break
            if reader.too_large is not None and reader.discarded > limits.max_file:
                raise reader.overflow()
    except ValueError:  # not multipart as the headers said, or the body was cut short
        if reader.too_large is not None:
            raise reader.overflow() from None
        reader.close_all()
        return StreamedForm(malformed=True)
    if reader.too_large is not None:
        raise reader.overflow()
    return reader.form


def _feed(decoder: MultipartDecoder, reader: _FormReader, chunk: bytes, marker: bytes,
          dialect_known: Callable[[StreamedForm], bool]) -> bool:
    """Parse one chunk, slice by slice (``_slices``); True at the end of the form."""
    for piece in _slices(chunk, marker):
        decoder.receive_data(piece)  # type: ignore[arg-type]  # it extends a bytearray
        if reader.consume(decoder, dialect_known):
            return True
    return False


def _slices(chunk: bytes, marker: bytes) -> Iterator[memoryview]:
    """``chunk`` in views of at most ``PARSE_SLICE`` bytes, each ending just before the
    line break of a boundary (``marker`` is ``--`` and the boundary).

    The decoder looks for a boundary with a regular expression, which tries every line
    break in its buffer, and does so only when the buffer holds a boundary: a slice
    ending where a file's bytes end would have most of the file scanned that slow way.
    """
    view = memoryview(chunk)
    start, size = 0, len(chunk)
    while start < size:
        end = min(start + PARSE_SLICE, size)
        # A boundary at the slice's very start is the one this slice was cut for.
        found = chunk.find(marker, start + 3, end)
        if found != -1:
            end = found - 2  # the line break before it (\r\n, \n or \r) goes with it
        yield view[start:end]
        start = end


class _FormReader:
    def __init__(self, limits: FormLimits, spool: Callable[[], Path]) -> None:
        self.limits = limits
        self.spool = spool
        self.form = StreamedForm()
        self.part: _Part | None = None
        self.parts = 0
        self.memory_slots = limits.memory_files
        self.field_bytes = 0
        self.too_large: _Part | None = None  # the first file part that passed max_file
        self.discarded = 0  # bytes read since then

    def consume(self, decoder: MultipartDecoder,
                dialect_known: Callable[[StreamedForm], bool]) -> bool:
        """Handle every event the decoder has; True at the end of the form."""
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                return False
            if isinstance(event, Epilogue):
                return True
            if isinstance(event, (Field, File)):
                self._start(event)
                if self.too_large is not None and dialect_known(self.form):
                    raise self.overflow()
            elif isinstance(event, Data):
                self._data(event.data, dialect_known)
                if not event.more_data:
                    self._end()

    def overflow(self) -> FileTooLarge:
        assert self.too_large is not None
        assert self.too_large.storage is not None
        self.close_all()
        return FileTooLarge(self.too_large.name, self.too_large.storage.filename or "",
                            self.form)

    def close_all(self) -> None:
        for _, storage in self.form.files:
            storage.close()
        if self.part is not None and self.part.sink is not None:
            self.part.sink.close()

    def _start(self, event: Field | File) -> None:
        self.parts += 1
        if self.limits.max_parts is not None and self.parts > self.limits.max_parts:
            raise FormTooLarge(f"The form has more than {self.limits.max_parts} parts")
        part = _Part(event.name, event.headers)
        if isinstance(event, File):
            stream: IO[bytes]
            if self.too_large is not None:
                stream = io.BytesIO()  # only counted, to tell the dialect
            elif self.memory_slots > 0:
                self.memory_slots -= 1
                stream = part.sink = io.BytesIO()
            else:
                try:
                    part.path = self.spool() / str(self.parts)
                    stream = part.sink = part.path.open("wb")
                except OSError as exc:
                    raise SpoolFailed(str(exc)) from exc
            part.storage = FileStorage(stream, event.filename, event.name, headers=event.headers)
            self.form.files.append((event.name, part.storage))
        self.part = part

    def _data(self, data: bytes, dialect_known: Callable[[StreamedForm], bool]) -> None:
        part = self.part
        assert part is not None
        if self.too_large is not None:
            self.discarded += len(data)
        part.size += len(data)
        if part.storage is None:
            self.field_bytes += len(data)
            if self.limits.max_fields is not None and self.field_bytes > self.limits.max_fields:
                raise FormTooLarge(f"The form's fields exceed "
                                   f"{self.limits.max_fields / 1000:g} KB")
            part.chunks.append(data)
        elif part.size > self.limits.max_file and self.too_large is None:
            self.too_large = part
            self._drop(part)
            if dialect_known(self.form):
                raise self.overflow()
        elif part.sink is not None:
            try:
                part.sink.write(data)
            except OSError as exc:
                raise SpoolFailed(str(exc)) from exc

    def _drop(self, part: _Part) -> None:
        """Stop keeping a part's bytes, and free what was kept."""
        assert part.storage is not None
        if part.sink is not None:
            part.sink.close()
            part.sink = None
        part.storage.stream = io.BytesIO()
        if part.path is not None:
            part.path.unlink(missing_ok=True)

    def _end(self) -> None:
        part = self.part
        assert part is not None
        self.part = None
        if part.storage is None:
            self.form.fields.append((part.name, b"".join(part.chunks).decode(
                _charset(part.headers), "replace")))
        elif part.sink is not None:
            if part.path is not None:
                try:
                    part.sink.close()  # flushes the last bytes
                    part.storage.stream = part.path.open("rb")
                except OSError as exc:
                    raise SpoolFailed(str(exc)) from exc
            else:
                part.sink.seek(0)
            part.sink = None


def _charset(headers: Headers) -> str:
    # As Werkzeug's parser: a small safe list, UTF-8 otherwise.
    _, options = parse_options_header(headers.get("content-type"))
    charset = options.get("charset", "").lower()
    return charset if charset in {"ascii", "us-ascii", "utf-8", "iso-8859-1"} else "utf-8"
