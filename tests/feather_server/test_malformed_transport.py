"""Malformed input below the app's parsers: odd link parameters and broken chunked bodies.

Raw sockets against a real gunicorn, so nothing (requests, the test client) tidies the
bytes on the way: each answer must be a 4xx in JSON and the worker must live on.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.server import GunicornServer

BOUNDARY = b"X"
FORM = (b"--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
        b"abc\r\n--X--\r\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    data = tmp_path_factory.mktemp("malformed")
    with GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": "0"},
                        workers=1) as running:
        yield running


def exchange(server: GunicornServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def get(server: GunicornServer, target: str) -> tuple[int, dict[str, str], bytes]:
    return exchange(server, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    .encode())


@pytest.mark.parametrize("query", [
    "signature=%C3%A9&expires=0",
    "signature=%C3%A9&expires=9999999999",
    "signature=aa&expires=%C2%B2",  # '²'.isdigit() is True in Python
    "signature=aa&expires=%D9%A3",  # ARABIC-INDIC DIGIT THREE: int() accepts it
    "signature=aa&expires=" + "9" * 4000,  # gunicorn's request line stops at 4094
    "signature=" + "a" * 64 + "&expires=-1",
    "signature=%00&expires=1",
    "signature=%FF%FE&expires=1",
])
@pytest.mark.parametrize("path", ["/api/downloads/abc/def", "/api/sessions/s.zip"])
def test_odd_link_parameters_are_a_bad_link(server: GunicornServer, path: str,
                                            query: str) -> None:
    target = f"{path}?{query}" + ("&scope=abc" if "sessions" in path else "")
    status, headers, body = get(server, target)
    assert status == 403, body
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"error": "FORBIDDEN", "message": "The download link is not valid"}


def chunked_post(server: GunicornServer, body: bytes) -> tuple[int, dict[str, str], bytes]:
    return exchange(server, b"POST /api/compress HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: chunked\r\n"
                            b"Content-Type: multipart/form-data; boundary=X\r\n"
                            b"Connection: close\r\n\r\n" + body)


@pytest.mark.parametrize("body", [
    b"zz\r\n" + FORM + b"\r\n0\r\n\r\n",  # a chunk size that is not hex
    b"%x\r\n" % len(FORM) + FORM + b"XX0\r\n\r\n",  # a chunk without its CRLF
    b"%x\r\n" % (len(FORM) + 50) + FORM,  # a chunk cut short, then the client hangs up
], ids=["bad-size", "no-terminator", "cut-short"])
def test_a_malformed_chunked_body_is_400_in_json(server: GunicornServer, body: bytes) -> None:
    if body.endswith(b"--X--\r\n"):  # cut short: close the sending side to end it
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as conn:
            conn.sendall(b"POST /api/compress HTTP/1.1\r\nHost: x\r\n"
                         b"Transfer-Encoding: chunked\r\n"
                         b"Content-Type: multipart/form-data; boundary=X\r\n\r\n" + body)
            conn.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        head, _, answer = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        content_type = [line for line in head.decode().split("\r\n")
                        if line.lower().startswith("content-type")][0]
    else:
        status, headers, answer = chunked_post(server, body)
        content_type = headers["content-type"]
    assert status == 400, answer
    assert "application/json" in content_type
    assert json.loads(answer)["error"]["code"] == "INVALID_INPUT"
    # The worker lives on.
    assert get(server, "/api/health")[0] == 200


def test_a_well_formed_chunked_upload_still_works(server: GunicornServer) -> None:
    from tests.images import encode, photo

    jpeg = encode(photo(64, 48), "JPEG")
    form = (b"--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n--X--\r\n")
    half = len(form) // 2
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (form[:half], form[half:]))
    status, headers, answer = chunked_post(server, body + b"0\r\n\r\n")
    assert status == 200, answer
    assert headers["content-type"].startswith("image/")


def test_expiry_past_pythons_integer_limit_is_a_bad_link() -> None:
    # Longer than gunicorn lets through, but a front that allows long URLs would pass it.
    from feather_server import create_app
    from feather_server.settings import Settings

    app = create_app(Settings.from_env({}, secret_key="k", rate_limit_per_minute=0))
    response = app.test_client().get("/api/downloads/abc/def?signature=aa&expires="
                                     + "9" * 5000)
    assert response.status_code == 403
    assert response.get_json()["error"] == "FORBIDDEN"
