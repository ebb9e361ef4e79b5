"""Feather as a service: gunicorn settings, the systemd unit, and a real gunicorn with
2 workers surviving kill -9 of a worker and a HUP reload mid-request."""

from __future__ import annotations

import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from feather_server.settings import Settings, settings_table
from tests.helpers import open_image
from tests.images import encode, photo
from tests.server import ROOT, GunicornServer

JPEG = encode(photo(96, 64), "JPEG")
UNIT = ROOT / "deploy" / "feather.service"
ENV_EXAMPLE = ROOT / "deploy" / "feather.env"


# gunicorn.conf.py

def load_gunicorn_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, object]:
    for name in ("WEB_CONCURRENCY", "REQUEST_TIMEOUT_MS", "GUNICORN_TIMEOUT", "METRICS_ENABLED",
                 "GRACEFUL_TIMEOUT", "MAX_REQUESTS", "MAX_REQUESTS_JITTER", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_gunicorn_conf(monkeypatch)
    assert conf["bind"] == "127.0.0.1:3000"  # never all addresses unless HOST says so
    assert conf["workers"] == os.cpu_count()
    assert conf["worker_class"] == "sync"
    assert conf["timeout"] > Settings().request_timeout  # type: ignore[operator]
    assert conf["graceful_timeout"] == 30
    assert conf["max_requests"] == 1000
    assert conf["max_requests_jitter"] == 100
    log_format = str(conf["access_log_format"])
    assert "%({x-request-id}o)s" in log_format
    assert "%(M)s" in log_format


def test_gunicorn_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_gunicorn_conf(monkeypatch, WEB_CONCURRENCY="3", REQUEST_TIMEOUT_MS="95500",
                              GRACEFUL_TIMEOUT="12", MAX_REQUESTS="50",
                              MAX_REQUESTS_JITTER="5", HOST="0.0.0.0", PORT="8080")
    assert conf["bind"] == "0.0.0.0:8080"
    assert conf["workers"] == 3
    assert conf["timeout"] > 95.5  # type: ignore[operator]
    assert conf["graceful_timeout"] == 12
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (50, 5)


# deploy/

def unit_entries() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = ""
    # systemd allows repeated keys, which configparser would merge: read lines.
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
            continue
        key, _, value = line.partition("=")
        sections[current].setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_file_is_hardened() -> None:
    service = unit_entries()["Service"]

    def one(key: str) -> str:
        assert key in service, f"{key} missing from feather.service"
        return service[key][-1]

    assert one("User") not in ("", "root")
    assert one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") in ("strict", "full")
    assert one("PrivateTmp") == "yes"
    assert one("ProtectHome") == "yes"
    assert one("Restart") == "on-failure"
    assert "HUP" in one("ExecReload")
    assert "$MAINPID" in one("ExecReload")
    assert re.search(r"gunicorn -c \S*gunicorn\.conf\.py wsgi:app$", one("ExecStart"))
    assert one("CapabilityBoundingSet") == ""
    assert int(one("TimeoutStopSec")) > 30  # longer than the default GRACEFUL_TIMEOUT
    assert one("EnvironmentFile").endswith("feather.env")
    assert unit_entries()["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed")
def test_unit_file_verifies(tmp_path: Path) -> None:
    # Point the unit at this checkout, whose virtualenv has the gunicorn it starts.
    unit = tmp_path / "feather.service"
    unit.write_text(UNIT.read_text().replace("/opt/feather", str(ROOT)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "feather.service" not in done.stderr, done.stderr  # no warning about our unit


def test_env_example_names_only_real_variables() -> None:
    known = {row[0] for row in settings_table()}
    known |= {"HOST", "WEB_CONCURRENCY", "GRACEFUL_TIMEOUT", "MAX_REQUESTS",
              "MAX_REQUESTS_JITTER", "GUNICORN_TIMEOUT", "ACCESS_LOG"}
    named = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert named
    assert set(named) <= known, set(named) - known
    # And the example itself is valid for the app.
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(\S*)", ENV_EXAMPLE.read_text(), re.M))
    Settings.from_env(values)


# A real gunicorn

class SlowUpload:
    """A POST /api/compress whose body arrives in two halves, so it is in a worker's
    hands, mid-request, for as long as the test likes."""

    def __init__(self, port: int) -> None:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() \
            + JPEG + f"\r\n--{boundary}--\r\n".encode()
        head = (f"POST /api/compress HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        self.server_port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        half = len(body) // 2
        self.sock.sendall(head + body[:half])
        self.rest = body[half:]

    @property
    def client_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def finish(self) -> tuple[int, bytes]:
        """(status, body); status 0 when the connection died."""
        try:
            self.sock.sendall(self.rest)
            chunks = []
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            return 0, b""
        finally:
            self.sock.close()
        raw = b"".join(chunks)
        if not raw.startswith(b"HTTP/1."):
            return 0, b""
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split()[1]), body


def socket_inode(server_port: int, client_port: int) -> int:
    """Inode of the server-side socket of one client connection (0 until accepted)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == server_port and remote_port == client_port:
                return int(fields[9])
    return 0


def worker_holding(server: GunicornServer, upload: SlowUpload, timeout: float = 60) -> int:
    """The pid of the worker that accepted ``upload``'s connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inode = socket_inode(upload.server_port, upload.client_port)
        if inode:
            target = f"socket:[{inode}]"
            for pid in server.worker_pids():
                try:
                    fds = os.listdir(f"/proc/{pid}/fd")
                except FileNotFoundError:
                    continue
                for fd in fds:
                    try:
                        if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                            return pid
                    except FileNotFoundError:
                        continue
        time.sleep(0.05)
    raise AssertionError("no worker accepted the connection")


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def compress(server: GunicornServer) -> requests.Response:
    return requests.post(server.url + "/api/compress",
                         files={"file": ("photo.jpg", JPEG, "image/jpeg")}, timeout=120)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GunicornServer]:
    # SlowUpload holds its body back for as long as a test needs a busy worker.
    gunicorn = GunicornServer({"DATA_DIR": str(tmp_path), "RATE_LIMIT_PER_MINUTE": "0",
                               "BODY_TIMEOUT_MS": "120000"}, workers=2)
    gunicorn.start(tmp_path)
    yield gunicorn
    gunicorn.stop()


def test_kill_9_fails_only_the_request_in_that_worker(server: GunicornServer) -> None:
    doomed, survivor = SlowUpload(server.port), SlowUpload(server.port)
    victim = worker_holding(server, doomed)
    other = worker_holding(server, survivor)
    assert victim != other  # a sync worker holds one request at a time

    os.kill(victim, signal.SIGKILL)
    assert doomed.finish()[0] == 0  # that request fails ...
    status, body = survivor.finish()  # ... the other worker's does not
    assert status == 200
    assert open_image(body).size == (96, 64)

    # The master replaces the dead worker, and the service answers as before.
    wait_for(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 2)
    assert server.process is not None
    assert server.process.poll() is None
    for _ in range(4):
        assert compress(server).status_code == 200


def test_hup_reload_drops_no_request_in_flight(server: GunicornServer) -> None:
    assert server.process is not None
    old_workers = set(server.worker_pids())
    in_flight = SlowUpload(server.port)
    holder = worker_holding(server, in_flight)
    assert holder in old_workers

    # Meanwhile, a client keeps sending requests through the reload.
    statuses: list[int] = []
    stop = threading.Event()

    def steady_client() -> None:
        while not stop.is_set():
            statuses.append(compress(server).status_code)

    client = threading.Thread(target=steady_client)
    client.start()
    try:
        os.kill(server.process.pid, signal.SIGHUP)
        # New workers come up while the old one still holds the unfinished request.
        wait_for(lambda: len(set(server.worker_pids()) - old_workers) >= 2)
        status, body = in_flight.finish()
        assert status == 200
        assert open_image(body).size == (96, 64)
        wait_for(lambda: not (set(server.worker_pids()) & old_workers))
        time.sleep(0.5)  # a few more requests served by the new workers only
    finally:
        stop.set()
        client.join(timeout=120)
    assert statuses, statuses
    assert set(statuses) == {200}, statuses
    assert "Handling signal: hup" in server.log()
