"""The multipart reader gives back every part's bytes exactly, however the body arrives."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from feather_server.http.multipart import PARSE_SLICE, FormLimits, read_form

BOUNDARY = b"----featherBoundary7MA4YWxkTrZu0gW"
LIMITS = FormLimits(max_file=50_000_000, max_body=100_000_000)


def _tricky_bytes(size: int, seed: int) -> bytes:
    """Binary data full of line breaks and of the boundary's start, which must not end it."""
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(size))
    near_misses = [b"\r\n--", b"\r\n--" + BOUNDARY[:-1], b"--" + BOUNDARY, b"\n--" + BOUNDARY[:5],
                   b"\r\r\n\n", b"\r\n--" + BOUNDARY[:-3] + b"x"]
    for _ in range(size // 5000):
        piece = rng.choice(near_misses)
        at = rng.randrange(0, max(1, size - len(piece)))
        data[at:at + len(piece)] = piece
    return bytes(data)


def _body(parts: list[tuple[str, str | None, bytes]], line_break: bytes) -> bytes:
    out = io.BytesIO()
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(b"--" + BOUNDARY + line_break)
        out.write(f"Content-Disposition: {disposition}".encode() + line_break)
        if filename is not None:
            out.write(b"Content-Type: application/octet-stream" + line_break)
        out.write(line_break + value + line_break)
    out.write(b"--" + BOUNDARY + b"--" + line_break)
    return out.getvalue()


def _read(body: bytes, read_size: int, tmp_path: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    source = io.BytesIO(body)
    form = read_form(lambda n: source.read(min(n, read_size)), BOUNDARY, len(body), LIMITS,
                     lambda: tmp_path, lambda _form: True)
    assert not form.malformed
    files = {name: storage.stream.read() for name, storage in form.files}
    return dict(form.fields), files


@pytest.mark.parametrize("line_break", [b"\r\n", b"\n"])
@pytest.mark.parametrize("read_size", [1_000_003, PARSE_SLICE, PARSE_SLICE + 3, 4096, 77])
def test_every_part_comes_back_exactly(tmp_path: Path, line_break: bytes, read_size: int) -> None:
    image = _tricky_bytes(700_000, seed=read_size)
    mark = _tricky_bytes(PARSE_SLICE - 2, seed=read_size + 1)  # ends next to a slice's end
    parts = [("quality", None, b"72"), ("file", "a.jpg", image), ("note", None, b"x" * 300),
             ("watermarkFile", "w.png", mark), ("empty", "e.bin", b"")]
    fields, files = _read(_body(parts, line_break), read_size, tmp_path)
    assert fields == {"quality": "72", "note": "x" * 300}
    assert files["file"] == image
    assert files["watermarkFile"] == mark
    assert files["empty"] == b""
