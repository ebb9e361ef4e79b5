"""`make loadtest`: a bounded load test of /api/compress on a local gunicorn (2 workers).

    python tools/loadtest.py [--images DIR_OR_LIST] [--duration 90] [--concurrency 4]

Only ever talks to the gunicorn it starts on 127.0.0.1. Mixes real photos (or
generated ones when no --images is given) with 10% hostile files (header bombs, a
100,000-frame GIF, truncated files, a <use> bomb, lies). Prints status counts and the
benign latency percentiles; exits 1 on any 5xx or a dead worker.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import hostile  # noqa: E402
from tests.images import encode, photo  # noqa: E402
from tests.server import GunicornServer  # noqa: E402
from tools.corpus_check import _WORKER_DEATH  # noqa: E402


def _photos(source: Path | None) -> list[tuple[str, bytes]]:
    if source is None:
        return [(f"photo{i}.jpg", encode(photo(1600, 1200, seed=i), "JPEG", quality=92))
                for i in range(6)]
    paths = ([Path(line.strip()) for line in source.read_text().splitlines() if line.strip()]
             if source.is_file() else sorted(p for p in source.rglob("*.jp*g")))
    return [(p.name, p.read_bytes()) for p in paths[:40]]


def _hostile() -> list[tuple[str, bytes]]:
    good = encode(photo(300, 200), "PNG")
    files = [(f"bomb.{fmt}", build(65_535, 65_535))
             for fmt, build in hostile.HEADER_BUILDERS.items()]
    files += [("frames.gif", hostile.many_frames_gif(100_000)),
              ("truncated.png", good[: len(good) // 3]),
              ("use-bomb.svg", hostile.use_bomb()),
              ("laughs.svg", hostile.billion_laughs()),
              ("lie.png", b"%PDF-1.4\n" + b"0" * 500)]
    return files


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(images: Path | None, duration: float, concurrency: int, hostile_share: float) -> int:
    benign, bad = _photos(images), _hostile()
    if not benign:
        print(f"no JPEG photos found at {images}", file=sys.stderr)
        return 2
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="feather-load-") as tmp:
        server = GunicornServer({"DATA_DIR": tmp, "RATE_LIMIT_PER_MINUTE": "0",
                                 "LOG_LEVEL": "WARNING"}, workers=2).start(Path(tmp))
        stop_at = time.monotonic() + duration

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            session = requests.Session()
            while time.monotonic() < stop_at:
                is_bad = rng.random() < hostile_share
                name, data = rng.choice(bad if is_bad else benign)
                started = time.monotonic()
                try:
                    status = session.post(server.url + "/api/compress",
                                          files={"file": (name, data)}, timeout=120).status_code
                except requests.RequestException:
                    status = 0
                took = time.monotonic() - started
                with lock:
                    statuses[("hostile" if is_bad else "benign", status)] += 1
                    if not is_bad and status == 200:
                        latencies.append(took)

        try:
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            alive = len(server.worker_pids())
            log = server.log()
        finally:
            server.stop()
    total = sum(statuses.values())
    print(f"{total} requests in {duration:.0f}s, concurrency {concurrency}, 2 workers")
    for (kind, status), n in sorted(statuses.items()):
        print(f"  {kind:<8} {status}  {n}")
    if latencies:
        print("benign latency: " + ", ".join(
            f"p{p} {_percentile(latencies, p) * 1000:.0f} ms" for p in (50, 95, 99)))
    errors = sum(n for (_, status), n in statuses.items() if status >= 500 or status == 0)
    deaths = [line for line in log.splitlines() if _WORKER_DEATH.search(line)]
    print(f"5xx or dropped: {errors}; worker deaths: {len(deaths)}; workers alive: {alive}")
    return 0 if total and errors == 0 and not deaths and alive >= 2 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of JPEG photos, or a file listing their paths")
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--hostile-share", type=float, default=0.10)
    args = parser.parse_args()
    return run(args.images, min(args.duration, 300), args.concurrency, args.hostile_share)


if __name__ == "__main__":
    raise SystemExit(main())
