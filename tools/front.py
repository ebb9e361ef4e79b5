"""`make run PROXY=nginx`: the production shape on one machine, nginx in front of gunicorn.

    python -m tools.front          (HOST, PORT, DATA_DIR and the rest from the environment)

nginx serves ``deploy/feather.nginx.conf`` itself, rendered for a local run by a user
who need not be root: it listens on HOST:PORT (127.0.0.1:3000 by default) and passes
requests to gunicorn on a unix socket only this user can reach; its pid file, logs
and temporary files live in ``DATA_DIR/nginx``. The size of bodies follows
MAX_UPLOAD_MB and the upstream timeout gunicorn's, as the comments of the site file
say. Nothing else of the site changes, so a local run is the production front.

gunicorn starts first, with TRUSTED_PROXIES=1; nginx starts once gunicorn is ready
(``/api/ready``). Ctrl-C (or TERM) stops both, and so does either of them exiting.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import http.client
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "feather.nginx.conf"
READY_PATH = "/api/ready"
_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin


class FrontError(Exception):
    """The front could not be set up or started."""


@dataclass(frozen=True)
class Front:
    """Where the local front lives and listens."""

    host: str
    port: int
    run_dir: Path  # DATA_DIR/nginx: configuration, pid, logs, temporary files
    socket_path: Path  # gunicorn's unix socket

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def body_limit(environ: Mapping[str, str]) -> int:
    """The largest body of any request: as the app's batch limit (20 files + watermark)."""
    max_upload_mb = float(environ.get("MAX_UPLOAD_MB") or 20)
    return int((20 + 1) * max_upload_mb * 1_000_000 + 2_000_000)


def upstream_timeout(environ: Mapping[str, str]) -> int:
    """Seconds nginx waits for an answer: gunicorn's worker timeout (as gunicorn.conf.py
    computes it) plus 5, so the app's own 504 and gunicorn's own kill come first."""
    gunicorn = int(environ.get("GUNICORN_TIMEOUT") or math.ceil(
        max(int(environ.get("REQUEST_TIMEOUT_MS") or 30000),
            int(environ.get("MODEL_FETCH_TIMEOUT_MS") or 60000)) / 1000) + 30)
    return gunicorn + 5


def render_site(site: str, front: Front, environ: Mapping[str, str]) -> str:
    """The site file for a local run; every line it changes must be there exactly once."""
    listen = f"[{front.host}]:{front.port}" if ":" in front.host else \
        f"{front.host}:{front.port}"
    changes = [
        (r"^(\s*)server 127\.0\.0\.1:3000;$", f"server unix:{front.socket_path};"),
        (r"^(\s*)listen 80;$", f"listen {listen};"),
        (r"^(\s*)listen \[::\]:80;$", "# (one address in a local run)"),
        (r"^(\s*)client_max_body_size \d+;$", f"client_max_body_size {body_limit(environ)};"),
        (r"^(\s*)proxy_read_timeout \d+s;$", f"proxy_read_timeout {upstream_timeout(environ)}s;"),
    ]
    for pattern, line in changes:
        site, count = re.subn(pattern, _keep_indent(line), site, flags=re.MULTILINE)
        if count != 1:
            raise FrontError(f"{SITE.name}: expected one line matching {pattern!r}, "
                             f"found {count}")
    return site


def _keep_indent(line: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match.group(1) + line


def render_main(front: Front, site_path: Path) -> str:
    """nginx's main configuration for a local run: what Debian's nginx.conf gives the site."""
    tmp = front.run_dir / "tmp"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers then stay this user
    temp_paths = "".join(f"    {kind}_temp_path {tmp / kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        "# Rendered by tools/front.py for `make run PROXY=nginx`; rewritten at every start.\n"
        f"{user}"
        "worker_processes auto;\n"
        f"pid {front.run_dir / 'nginx.pid'};\n"
        f"error_log {front.run_dir / 'error.log'} warn;\n"
        "events {\n    worker_connections 1024;\n}\n"
        "http {\n"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        "    tcp_nopush on;\n"
        f"    access_log {front.run_dir / 'access.log'};\n"
        f"{temp_paths}"
        f"    include {site_path};\n"
        "}\n"
    )


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)
    if found is None:
        raise FrontError("nginx is not installed: run `make nginx-deps` (Debian's nginx)")
    return found


def prepare(environ: Mapping[str, str]) -> tuple[Front, Path]:
    """Write the rendered configuration; (the front, nginx's main configuration file)."""
    data_dir = Path(environ.get("DATA_DIR") or "var").resolve()
    run_dir = data_dir / "nginx"
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / "tmp" / kind).mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    socket_path = run_dir / "gunicorn.sock"
    if len(str(socket_path)) > _UNIX_PATH_MAX:  # a deep DATA_DIR: a short private folder
        socket_path = Path(tempfile.mkdtemp(prefix="feather-front-")) / "gunicorn.sock"
    front = Front(host=environ.get("HOST") or "127.0.0.1",
                  port=int(environ.get("PORT") or 3000), run_dir=run_dir,
                  socket_path=socket_path)
    (run_dir / "error.log").write_text("")  # this run's errors only
    site_path = run_dir / "feather.conf"
    site_path.write_text(render_site(SITE.read_text(), front, environ))
    main_path = run_dir / "nginx.conf"
    main_path.write_text(render_main(front, site_path))
    return front, main_path


def _die_with_parent() -> None:
    # If this launcher is killed outright, its children go too (Linux PR_SET_PDEATHSIG).
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).prctl(1, signal.SIGTERM)


def _get(front: Front, path: str, *, via_socket: bool) -> tuple[int, str]:
    """(status, body) of GET ``path`` from gunicorn's socket or from nginx; 0 unreachable."""
    try:
        if via_socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(2)
            sock.connect(str(front.socket_path))
            connection = http.client.HTTPConnection("localhost", timeout=2)
            connection.sock = sock
        else:
            connection = http.client.HTTPConnection(front.host, front.port, timeout=2)
        connection.request("GET", path, headers={"Host": f"127.0.0.1:{front.port}"})
        answer = connection.getresponse()
        body = answer.read(2000).decode(errors="replace")
        connection.close()
        return answer.status, body
    except OSError:
        return 0, ""


class _Stopped(Exception):
    """Ctrl-C or TERM came while starting."""


def _wait_ready(front: Front, name: str, process: subprocess.Popen[bytes],
                stop: threading.Event, *, via_socket: bool, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status, body = 0, ""
    while time.monotonic() < deadline:
        if stop.is_set():
            raise _Stopped
        if process.poll() is not None:
            log = front.run_dir / "error.log"
            tail = log.read_text(errors="replace")[-2000:] if name == "nginx" and \
                log.exists() else ""
            raise FrontError(f"{name} exited with status {process.returncode}\n{tail}")
        status, body = _get(front, READY_PATH, via_socket=via_socket)
        if status == 404:  # a build without the readiness probe: liveness then
            status, body = _get(front, "/api/health", via_socket=via_socket)
        if status == 200:
            return
        time.sleep(0.1)
    raise FrontError(f"{name} not ready after {timeout:g} s "
                     f"(last {READY_PATH}: {status or 'no answer'} {body})")


def run(environ: Mapping[str, str]) -> int:
    env = dict(environ)
    env["TRUSTED_PROXIES"] = "1"  # nginx, and only nginx, is in front
    front, main_conf = prepare(env)
    nginx = nginx_binary()
    check = subprocess.run([nginx, "-t", "-q", "-p", str(front.run_dir), "-c", str(main_conf),
                            "-e", str(front.run_dir / "error.log")],
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise FrontError(f"nginx -t failed:\n{check.stderr}")

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    gunicorn = Path(sys.executable).with_name("gunicorn")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(subprocess.Popen(
            [str(gunicorn), "-c", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"unix:{front.socket_path}", "wsgi:app"],
            cwd=ROOT, env=env, preexec_fn=_die_with_parent))
        _wait_ready(front, "gunicorn", processes[0], stop, via_socket=True, timeout=60)
        processes.append(subprocess.Popen(
            [nginx, "-p", str(front.run_dir), "-c", str(main_conf),
             "-e", str(front.run_dir / "error.log"), "-g", "daemon off;"],
            env=env, preexec_fn=_die_with_parent))
        _wait_ready(front, "nginx", processes[1], stop, via_socket=False, timeout=30)
        print(f"Feather on {front.url} (nginx in front of gunicorn on unix:{front.socket_path};"
              f" nginx logs in {front.run_dir}). Ctrl-C stops both.", flush=True)
        while not stop.wait(0.2):
            for name, process in zip(("gunicorn", "nginx"), processes, strict=True):
                if process.poll() is not None:
                    print(f"{name} exited with status {process.returncode}; stopping",
                          file=sys.stderr)
                    return 1
        return 0
    except _Stopped:
        return 0
    finally:
        _stop_all(processes)
        (front.run_dir / "nginx.pid").unlink(missing_ok=True)  # `nginx -t` leaves it empty
        if front.socket_path.parent != front.run_dir:
            shutil.rmtree(front.socket_path.parent, ignore_errors=True)


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """nginx first (QUIT: it finishes the requests in hand), then gunicorn (TERM: its
    workers finish theirs within GRACEFUL_TIMEOUT); KILL what is still there after."""
    for process, sig in reversed(list(zip(processes, (signal.SIGTERM, signal.SIGQUIT),
                                          strict=False))):
        if process.poll() is None:
            process.send_signal(sig)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    try:
        return run(os.environ)
    except FrontError as exc:
        print(f"make run PROXY=nginx: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
