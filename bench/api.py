"""API runs: Feather under real gunicorn and the sharp peer, 2 workers each, 2 clients.

Server CPU is read from /proc for the worker processes (all their threads) and every
process below them (Feather's job processes, and those that ended, through their
parents' counts of waited-for children), so a busy machine slows the wall clock but
not the figures compared.
"""

from __future__ import annotations

import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.images import HERE, Photo
from tests.processes import CLOCK_TICKS, children, cpu_ticks, descendants, status_kb
from tests.server import GunicornServer, free_port

PEER_DIR = HERE / "sharp-peer"
WORKERS = 2
CLIENTS = 2


def install_peer() -> None:
    """`npm ci` in bench/sharp-peer when its node_modules is missing or stale."""
    lock = PEER_DIR / "package-lock.json"
    stamp = PEER_DIR / "node_modules" / ".package-lock.json"
    if stamp.is_file() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None:
        raise SystemExit("bench: npm is needed for the sharp peer (apt-get install nodejs npm)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of ``pids``, every thread of each, every process below them
    included (those that ended through their parents' counts of reaped children)."""
    return sum(cpu_ticks(member, reaped_children=True)
               for pid in pids for member in (pid, *descendants(pid))) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    return status_kb(pid, "VmHWM") / 1024


class Server:
    """A running server to bench: its URL and the pids whose CPU counts."""

    name: str
    url: str

    def worker_pids(self) -> list[int]:
        raise NotImplementedError


class FeatherServer(Server):
    name = "feather"

    def __init__(self, gunicorn: GunicornServer) -> None:
        self.gunicorn = gunicorn
        self.url = gunicorn.url

    def worker_pids(self) -> list[int]:
        return self.gunicorn.worker_pids()


class SharpServer(Server):
    name = "sharp"

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)


@contextmanager
def feather_server(env: dict[str, str] | None = None) -> Iterator[FeatherServer]:
    with tempfile.TemporaryDirectory(prefix="feather-bench-") as data_dir:
        server = GunicornServer({"RATE_LIMIT_PER_MINUTE": "0", "DATA_DIR": data_dir,
                                 "LOG_LEVEL": "WARNING", "REQUEST_TIMEOUT_MS": "600000",
                                 **(env or {})}, workers=WORKERS)
        server.start(Path(data_dir), timeout=60)
        try:
            yield FeatherServer(server)
        finally:
            server.stop()


@contextmanager
def sharp_server() -> Iterator[SharpServer]:
    port = free_port()
    process = subprocess.Popen(["node", "server.js", str(port), str(WORKERS)], cwd=PEER_DIR,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = SharpServer(process, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: the sharp peer exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                if requests.get(server.url + "/api/health", timeout=1).ok and \
                        len(server.worker_pids()) >= WORKERS:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("bench: the sharp peer did not start")
            time.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Reply:
    photo: str
    seconds: float
    size: tuple[int, int]
    output_bytes: int
    iterations: int


@dataclass(frozen=True)
class ApiRun:
    """One job through one server: server CPU per request, throughput, latency, outputs."""

    server: str
    cpu_ms: float
    wall_s: float
    replies: tuple[Reply, ...]

    @property
    def req_per_s(self) -> float:
        return len(self.replies) / self.wall_s

    @property
    def p95_ms(self) -> float:
        times = sorted(r.seconds for r in self.replies)
        return 1000 * times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]

    @property
    def mean_latency_ms(self) -> float:
        return 1000 * statistics.fmean(r.seconds for r in self.replies)


def _post(session: requests.Session, url: str, photo: Photo, fields: dict[str, str]) -> Reply:
    start = time.perf_counter()
    response = session.post(url + "/api/compress", data=fields,
                            files={"file": (photo.name, photo.data, "image/jpeg")}, timeout=300)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"bench: {url} answered {response.status_code} for {photo.name}: "
                         f"{response.text[:300]}")
    headers = response.headers
    return Reply(photo.name, seconds,
                 (int(headers["X-Output-Width"]), int(headers["X-Output-Height"])),
                 len(response.content), int(headers.get("X-Iterations", "1")))


def run(server: Server, photos: Sequence[Photo], fields: dict[str, str],
        clients: int = CLIENTS) -> ApiRun:
    """POST every photo with ``clients`` concurrent clients; CPU of the workers meanwhile."""
    local = threading.local()

    def post(photo: Photo) -> Reply:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return _post(local.session, server.url, photo, fields)

    pids = server.worker_pids()
    with ThreadPoolExecutor(clients) as pool:
        # A warm-up request per client, not counted: first requests import lazily.
        list(pool.map(post, [photos[0]] * clients))
        cpu_before = cpu_seconds(pids)
        start = time.perf_counter()
        replies = list(pool.map(post, photos))
        wall = time.perf_counter() - start
        cpu = cpu_seconds(pids) - cpu_before
    return ApiRun(server.name, 1000 * cpu / len(photos), wall, tuple(replies))


def run_batch(server: Server, photos: Sequence[Photo], fields: dict[str, str]) -> float:
    """Wall seconds of one multi-file POST /api/batch holding every photo.

    Feather answers in the FluxImage dialect (``format`` instead of ``outputFormat``);
    the sharp peer takes either. Both process the files of one request in parallel.
    """
    batch_fields = {k: v for k, v in fields.items() if k != "outputFormat"}
    batch_fields["format"] = {"jpeg": "jpg"}.get(fields.get("outputFormat", "webp"),
                                                 fields.get("outputFormat", "webp"))
    files = [("file", (p.name, p.data, "image/jpeg")) for p in photos]
    # A warm-up request, not counted: first requests import lazily.
    requests.post(server.url + "/api/batch", data=batch_fields, files=files[:1], timeout=300)
    start = time.perf_counter()
    response = requests.post(server.url + "/api/batch", data=batch_fields, files=files,
                             timeout=600)
    wall = time.perf_counter() - start
    body = response.json() if response.ok else {}
    if len(body.get("data", [])) != len(photos):
        raise SystemExit(f"bench: {server.name} batch answered {response.status_code}: "
                         f"{response.text[:300]}")
    return wall


def largest_allowed(max_pixels: int) -> tuple[Photo, int]:
    """A photo of ``max_pixels`` (3:2), as JPEG, and its decoded RGB size in bytes."""
    width, height = _three_by_two(max_pixels)
    return _generated(f"largest-{width}x{height}.jpg", width, height, 7), width * height * 3


def photos_of_megapixels(megapixels: float, count: int) -> tuple[Photo, ...]:
    """``count`` photos of ``megapixels`` (3:2) as JPEG, five different ones repeated."""
    width, height = _three_by_two(int(megapixels * 1e6))
    distinct = [_generated(f"{megapixels:g}mp-{seed}.jpg", width, height, seed)
                for seed in range(min(5, count))]
    return tuple(distinct[i % len(distinct)] for i in range(count))


def _three_by_two(pixels: int) -> tuple[int, int]:
    height = int((pixels * 2 / 3) ** 0.5)
    return pixels // height, height


def _generated(name: str, width: int, height: int, seed: int) -> Photo:
    """A generated photo, drawn at a quarter of its size and scaled up (fast to make)."""
    from PIL import Image

    from bench.images import encoded, photo

    small = photo(max(2, width // 4), max(2, height // 4), seed=seed)
    data = encoded(small.resize((width, height), Image.Resampling.BICUBIC), "JPEG", quality=85)
    return Photo(name, data, width, height)


def peak_rss(server: Server, photo: Photo, fields: dict[str, str]) -> float:
    """Highest peak (MB) of a worker and its job, after each worker has processed ``photo``:
    the worker's VmHWM plus the highest VmHWM below it (the job process that decoded)."""
    pids = server.worker_pids()
    with ThreadPoolExecutor(len(pids)) as pool:
        # As many concurrent requests as workers, twice: each worker gets the photo.
        for _ in range(2):
            list(pool.map(lambda _i: _post(requests.Session(), server.url, photo, fields),
                          range(len(pids))))
    return max(peak_rss_mb(pid) + max((peak_rss_mb(p) for p in descendants(pid)), default=0.0)
               for pid in pids)


def batch_peak_mb(server: Server, photos: Sequence[Photo], fields: dict[str, str]) -> float:
    """Peak memory (MB) of a worker and every process below it while one /api/batch
    holds ``photos``: the sum of their resident sizes, sampled every 10 ms."""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            total = sum(status_kb(member, "VmRSS") for pid in server.worker_pids()
                        for member in (pid, *descendants(pid)))
            peak = max(peak, total)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run_batch(server, photos, fields)
    finally:
        done.set()
        sampler.join()
    return peak / 1024
