"""`make run PROXY=nginx` started for the tests: nginx from Debian's package in front of a
real gunicorn, in its own session so a test can press Ctrl-C on it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import requests

from tests.server import ROOT, free_port
from tools.front import FrontError, nginx_binary


def require_nginx() -> str:
    try:
        return nginx_binary()
    except FrontError:
        pytest.fail("nginx is missing: run `make nginx-deps` (Debian's nginx package)")


class LocalFront:
    """``make run PROXY=nginx`` on a free port, with its own DATA_DIR."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None,
                 workers: int = 2) -> None:
        require_nginx()
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / "make-run.log"
        venv = Path(sys.executable).parent.parent
        self.command = ["make", "-s", "--no-print-directory", "run", "PROXY=nginx",
                        f"VENV={venv}"]
        self.env = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1",
                    "DATA_DIR": str(data_dir), "WEB_CONCURRENCY": str(workers),
                    "RATE_LIMIT_PER_MINUTE": "0", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> LocalFront:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        # A session of its own: Ctrl-C reaches make and everything it started, as in a
        # terminal, and nothing else.
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"make run PROXY=nginx exited: {self.log()}")
            if "Feather on http://" in self.log():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"make run PROXY=nginx did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def session_pids(self) -> list[int]:
        """Every process still in the session (make, the launcher, gunicorn, nginx)."""
        if self.process is None:
            return []
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.process.pid and fields[0] != "Z":  # session id
                pids.append(int(stat.parent.name))
        return pids

    def pids_named(self, name: str) -> list[int]:
        found = []
        for pid in self.session_pids():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if name.encode() in command:
                found.append(pid)
        return found

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C: SIGINT to the whole foreground group; make's exit status."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.interrupt()
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for pid in self.session_pids():  # whatever a failure left behind
            os.kill(pid, signal.SIGKILL)

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]
