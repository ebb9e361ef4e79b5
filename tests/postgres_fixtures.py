"""A PostgreSQL cluster of the test's own, to stop and pause without touching the shared one.

``initdb`` and ``pg_ctl`` from the installed server packages make a cluster in a temporary
folder, listening on a free port of 127.0.0.1 only. ``pause`` stops its processes with
SIGSTOP (connections are accepted by the kernel and never answered: a hung server),
``resume`` continues them, ``stop`` shuts it down. Only the processes of this cluster
(its postmaster.pid and that process's children) are ever signalled.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.server import free_port


def _bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        done = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(done.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


class PrivatePostgres:
    """One throw-away cluster; ``url`` reaches its ``postgres`` database."""

    def __init__(self) -> None:
        # Its own folder in /tmp, not pytest's: the postgres user must reach it, and
        # pytest's folders are private to the user running the tests.
        self.folder = Path(tempfile.mkdtemp(prefix="feather-pg-"))
        self.port = free_port()
        self.data = self.folder / "data"
        self.bindir = _bindir()
        self._user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def available(self) -> str | None:
        """Why this machine cannot run a private cluster, or None."""
        if self.bindir is None:
            return "PostgreSQL's initdb is not installed"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and no postgres user to run initdb as"
            self._user = "postgres"
        return None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._user:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=120)

    def start(self) -> PrivatePostgres:
        reason = self.available()
        if reason:
            raise RuntimeError(reason)
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        if not self.data.exists():
            done = self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                             "--no-sync")
            if done.returncode:
                raise RuntimeError(f"initdb failed: {done.stderr}")
        self.resume()
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=40")
        done = self._run("pg_ctl", "-D", str(self.data), "-o", options,
                         "-l", str(self.folder / "postgres.log"), "-w", "-t", "60", "start")
        if done.returncode:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout} {done.stderr} "
                               f"{self.log()}")
        return self

    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def _pids(self) -> list[int]:
        try:
            main = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        children = subprocess.run(["pgrep", "-P", str(main)], capture_output=True,
                                  text=True, check=False).stdout.split()
        return [main, *(int(pid) for pid in children)]

    def _signal(self, signum: int) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
