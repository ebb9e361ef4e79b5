"""The production front: `make run PROXY=nginx` (Debian's nginx in front of a real
gunicorn, from deploy/feather.nginx.conf) against slow clients, its own JSON errors,
and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from feather_server.http.policy import batch_request_limit
from feather_server.settings import Settings
from tests.body_fixtures import Part, complete, form_chunks, form_length, post_raw
from tests.front_fixtures import LocalFront, require_nginx
from tests.images import encode, photo
from tests.server import ROOT, free_port
from tools import front as front_tool

PHOTO = encode(photo(1600, 1200, seed=3), "JPEG", quality=90)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFront]:
    running = LocalFront(tmp_path_factory.mktemp("front")).start()
    yield running
    running.stop()


def raw(port: int, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        # Stop at the end of the answer: nginx may reset a connection whose client
        # never sent the body it announced.
        while not complete(data) and (chunk := sock.recv(65536)):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_nginx_refuses_a_body_too_large_unread_in_json(front: LocalFront) -> None:
    head = (f"POST /api/compress HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            "Content-Length: 500000000\r\n\r\n").encode()
    status, headers, body = raw(front.port, head)  # the body is never sent
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "FILE_TOO_LARGE"


def test_nginx_answers_a_broken_request_in_json(front: LocalFront) -> None:
    status, headers, body = raw(front.port, b"GARBAGE\x01 / HTTP/1.1\r\n\r\n")
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": {"code": "INVALID_INPUT",
                                          "message": "The request could not be read"}}


def test_the_apps_own_answers_pass_through(front: LocalFront) -> None:
    r = requests.post(front.url + "/api/compress", timeout=60,
                      files={"file": ("photo.jpg", PHOTO)}, data={"outputFormat": "webp"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/webp"
    assert int(r.headers["X-Original-Bytes"]) == len(PHOTO)

    parts = [Part("file", 25_000_000, "big.jpg")]  # within nginx's limit, not the app's
    answer = post_raw(front.port, "/api/compress", form_chunks(parts), form_length(parts))
    assert answer.status == 413
    assert answer.json() == {"error": {"code": "FILE_TOO_LARGE",
                                       "message": "The file exceeds the 20 MB upload limit"}}

    # Download links name the front, port included (nginx passes the client's Host).
    r = requests.post(front.url + "/api/batch", timeout=60,
                      files=[("file", ("a.jpg", PHOTO)), ("file", ("b.jpg", PHOTO))])
    assert r.status_code == 200, r.text
    url = r.json()["data"][0]["downloadUrl"]
    assert url.startswith(front.url + "/api/downloads/")
    assert requests.get(url, timeout=30).content[:4] == b"RIFF"


class SlowClients:
    """Connections that each send one byte a second: half of them their headers, half
    their body (after headers announcing 20 MB). Those nginx drops are reopened."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.opened = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _head(self, slow_body: bool) -> bytes:
        head = (f"POST /api/compress HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n")
        return (head + "Content-Length: 20000000\r\n\r\n" if slow_body
                else head + "X-Padding: " + "a" * 200 + "\r\n\r\n").encode()

    def _open(self, index: int) -> tuple[socket.socket, bytes]:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        self.opened += 1
        head = self._head(slow_body=index % 2 == 0)
        if index % 2 == 0:
            sock.send(head)
            return sock, b"--b\r\n" + b"x" * 20_000_000
        return sock, head

    def _run(self) -> None:
        clients = [self._open(i) for i in range(self.count)]
        position = [0] * self.count
        while not self._stop.wait(1.0):
            for i, (sock, data) in enumerate(clients):
                try:
                    sock.send(data[position[i]:position[i] + 1])
                    position[i] += 1
                except (BlockingIOError, ConnectionError, OSError):
                    self.dropped += 1
                    sock.close()
                    clients[i] = self._open(i)
                    position[i] = 0
        for sock, _ in clients:
            sock.close()

    def __enter__(self) -> SlowClients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def probe(front: LocalFront, seconds: float) -> tuple[list[float], list[float]]:
    """Health latencies every 0.25 s, and compress times, for ``seconds``."""
    health: list[float] = []
    compress: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        assert front.get("/api/health").status_code == 200
        health.append(time.monotonic() - started)
        if len(health) % 12 == 1:
            started = time.monotonic()
            r = requests.post(front.url + "/api/compress", timeout=60,
                              files={"file": ("photo.jpg", PHOTO)},
                              data={"outputFormat": "webp", "maxWidth": "1200"})
            assert r.status_code == 200
            compress.append(time.monotonic() - started)
        time.sleep(0.25)
    return health, compress


def test_a_hundred_slow_clients_do_not_delay_the_service(front: LocalFront) -> None:
    quiet_health, quiet_compress = probe(front, 6)
    with SlowClients(front.port, 100) as slow:
        time.sleep(3)  # every connection open and trickling
        busy_health, busy_compress = probe(front, 15)
    figures = {
        "quiet": {"health_p50_ms": 1000 * statistics.median(quiet_health),
                  "health_max_ms": 1000 * max(quiet_health),
                  "compress_median_s": statistics.median(quiet_compress)},
        "100 slow clients": {"health_p50_ms": 1000 * statistics.median(busy_health),
                             "health_max_ms": 1000 * max(busy_health),
                             "compress_median_s": statistics.median(busy_compress),
                             "connections_opened": slow.opened,
                             "dropped_by_nginx": slow.dropped},
    }
    print(json.dumps(figures, indent=1))
    assert slow.opened >= 100
    # Margins for a loaded two-core machine: the point is that nothing waits for the
    # slow clients (without nginx, /api/health does not answer at all).
    assert max(busy_health) < 2.0, figures
    assert statistics.median(busy_compress) < 2 * statistics.median(quiet_compress) + 1.0, \
        figures


def test_nginx_answers_502_and_504_in_json_when_gunicorn_cannot(tmp_path: Path) -> None:
    nginx = require_nginx()
    env = {"DATA_DIR": str(tmp_path), "HOST": "127.0.0.1",
           "PORT": str(free_port()), "GUNICORN_TIMEOUT": "1"}
    local, main_conf = front_tool.prepare(env)
    assert f"proxy_read_timeout {1 + 5}s;" in (local.run_dir / "feather.conf").read_text()
    process = subprocess.Popen([nginx, "-p", str(local.run_dir), "-c", str(main_conf),
                                "-e", str(local.run_dir / "error.log"), "-g", "daemon off;"])
    try:
        wait_listening(local.port)
        # Nobody on gunicorn's socket: 502.
        r = requests.get(local.url + "/api/health", timeout=30)
        assert r.status_code == 502
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["Retry-After"] == "5"
        assert r.json()["error"]["code"] == "BAD_GATEWAY"

        # A gunicorn that accepts and never answers: 504 after proxy_read_timeout.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
            hung.bind(str(local.socket_path))
            hung.listen(8)
            os.chmod(local.socket_path, 0o666)
            r = requests.get(local.url + "/api/health", timeout=60)
        assert r.status_code == 504
        assert r.json() == {"error": {"code": "TIMEOUT",
                                      "message": "The service did not answer in time"}}
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_the_site_file_is_what_a_local_run_serves(tmp_path: Path) -> None:
    shipped = front_tool.SITE.read_text()
    env = {"DATA_DIR": str(tmp_path), "PORT": "8123", "MAX_UPLOAD_MB": "5",
           "GUNICORN_TIMEOUT": "40"}
    local, _ = front_tool.prepare(env)
    rendered = (local.run_dir / "feather.conf").read_text()
    changed = [(a.strip(), b.strip())
               for a, b in zip(shipped.splitlines(), rendered.splitlines(), strict=True)
               if a != b]
    assert changed == [
        ("server 127.0.0.1:3000;", f"server unix:{local.socket_path};"),
        ("listen 80;", "listen 127.0.0.1:8123;"),
        ("listen [::]:80;", "# (one address in a local run)"),
        ("client_max_body_size 422000000;", "client_max_body_size 107000000;"),
        ("proxy_read_timeout 95s;", "proxy_read_timeout 45s;"),
    ]
    # The shipped body limit is the app's own for the default MAX_UPLOAD_MB.
    assert f"client_max_body_size {batch_request_limit(Settings())};" in shipped


def test_the_service_files_agree_with_the_site() -> None:
    site = front_tool.SITE.read_text()
    env = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(\S*)", (ROOT / "deploy" / "feather.env")
                          .read_text(), re.MULTILINE))
    # gunicorn listens where nginx sends requests, on loopback only, trusting one proxy.
    assert f"server {env['HOST']}:{env['PORT']};" in site
    assert env["HOST"] == "127.0.0.1"
    assert env["TRUSTED_PROXIES"] == "1"
    assert "EnvironmentFile=/etc/feather/feather.env" in (ROOT / "deploy" / "feather.service"
                                                         ).read_text()


def test_ctrl_c_stops_nginx_and_gunicorn(tmp_path: Path) -> None:
    local = LocalFront(tmp_path / "var", workers=1).start()
    try:
        assert local.get("/api/health").status_code == 200
        assert local.pids_named("nginx: master")
        assert local.pids_named("gunicorn")
        run_dir = tmp_path / "var" / "nginx"
        assert (run_dir / "nginx.pid").exists()
        assert (run_dir / "gunicorn.sock").exists()
        local.interrupt(timeout=60)
        assert local.session_pids() == []
        assert not (run_dir / "nginx.pid").exists()
        assert not (run_dir / "gunicorn.sock").exists()
        with pytest.raises(requests.ConnectionError):
            local.get("/api/health")
    finally:
        local.stop()
