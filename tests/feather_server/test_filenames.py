"""Hostile file names never break the Content-Disposition header or the server."""

from __future__ import annotations

import io
import re
import socket
from urllib.parse import unquote

import pytest
from flask.testing import FlaskClient

from feather_server.filenames import content_disposition
from tests.images import encode, photo
from tests.server import GunicornServer

NAMES = [
    "evil\r\nSet-Cookie: a=b.png",
    'quote"d; filename="x.exe.png',
    "back\\slash.png",
    "../../etc/passwd.png",
    "..\\..\\windows\\win.ini.png",
    "a" * 300 + ".png",
    "Ünïcödé 写真 📷.png",
    "‮gnp.exe",
    "nul\x00byte.png",
    "tab\tand\x7fdel.png",
    ".png",
    "   .png",
    "%2e%2e%2fencoded.png",
]
_PARAM = re.compile(r'^attachment; filename="([^"\\\r\n]*)"'
                    r"(?:; filename\*=UTF-8''([A-Za-z0-9%._~!$&+\-^`|]*))?$")


def _check_header(header: str, path_free: bool = True) -> str:
    """The name a browser would save under, after checking the header is well formed."""
    assert "\r" not in header
    assert "\n" not in header
    assert "\x00" not in header
    header.encode("latin-1")  # a header value must be encodable as Latin-1 (it is ASCII here)
    assert header.isascii()
    match = _PARAM.match(header)
    assert match, header
    name = unquote(match.group(2)) if match.group(2) else match.group(1)
    if path_free:
        assert "/" not in name
        assert "\\" not in name
        assert not name.startswith(".")
        assert len(match.group(1)) <= 200
    return name


@pytest.mark.parametrize("name", NAMES)
def test_content_disposition_function(name: str) -> None:
    # The function only quotes; folders and length are the upload's job (tested below).
    saved = _check_header(content_disposition(f"{name}-compressed.webp"), path_free=False)
    assert saved.endswith("-compressed.webp")


@pytest.mark.parametrize("name", NAMES)
def test_upload_name_gives_a_safe_header(client: FlaskClient, name: str) -> None:
    data = encode(photo(32, 24), "PNG")
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), name)})
    if "\r\n" in name:
        # A raw CRLF ends the part header early, so the part may not parse as a file at
        # all: then the documented 400, never a 500 or a header carrying the CRLF.
        assert response.status_code in (200, 400)
        if response.status_code == 400:
            assert response.get_json()["error"]["code"] == "INVALID_INPUT"
            return
    assert response.status_code == 200, response.get_json()
    saved = _check_header(response.headers["Content-Disposition"])
    assert saved.endswith("-compressed.webp")  # auto makes the photo WebP
    assert "etc" not in saved or "passwd" in saved  # folders dropped, the base name kept


def test_unicode_name_is_kept_in_filename_star(client: FlaskClient) -> None:
    data = encode(photo(32, 24), "PNG")
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), "Ünïcödé 写真.png")})
    saved = _check_header(response.headers["Content-Disposition"])
    assert saved == "Ünïcödé 写真-compressed.webp"


def _raw_multipart(filename_bytes: bytes, payload: bytes) -> bytes:
    boundary = b"----feather-test-boundary"
    body = (b"--" + boundary + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="' + filename_bytes + b'"\r\n'
            b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--" + boundary + b"--\r\n")
    head = (b"POST /api/compress HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    return head + body


@pytest.mark.parametrize("raw_name", [
    "naïve\u202e.png".encode(),
    b"\xff\xfe broken utf8 \xc3.png",
    b"line\r\nX-Injected: yes.png",
    b'a"b.png',
    b"x" * 300 + b".png",
], ids=["unicode", "bad-utf8", "crlf", "quote", "long"])
def test_raw_names_on_a_real_server(live_server: GunicornServer, raw_name: bytes) -> None:
    """Bytes a browser would never send, sent as they are to gunicorn."""
    request = _raw_multipart(raw_name, encode(photo(32, 24), "PNG"))
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=60) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, _ = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    status = int(status_line.split()[1])
    assert status in (200, 400), answer[:300]
    headers = dict(line.split(b": ", 1) for line in header_lines)
    assert b"X-Injected" not in headers
    if status == 200:
        _check_header(headers[b"Content-Disposition"].decode("latin-1"))
    else:
        assert b'"code"' in answer
