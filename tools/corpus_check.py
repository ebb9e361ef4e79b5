"""Send every image file of a corpus to /api/compress on a real gunicorn and tally the answers.

    python -m tools.corpus_check /path/to/corpus [--subdirs pillow-tests sharp-fixtures]

Every answer must be 200 or a documented 4xx JSON error, within REQUEST_TIMEOUT_MS, and
no worker may die (killed by a signal, timed out by gunicorn, or a dropped connection).
Prints counts by status and code, the slowest files, and every failure.

Then the differential check (tools/differential.py) decodes the same files with Feather
and with a reference decoder and prints a table of the files that differ; a difference
not explained in tools/known_differences.txt fails the check. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import collections
import mimetypes
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import GunicornServer  # noqa: E402

DEFAULT_SUBDIRS = ("pillow-tests", "sharp-fixtures")
# Lines gunicorn's arbiter writes when a worker dies other than by a normal recycle.
_WORKER_DEATH = re.compile(
    r"WORKER TIMEOUT|was terminated due to signal|Perhaps out of memory|"
    r"Worker \(pid:\d+\) exited with code [^0]|Worker failed to boot"
)
_DOCUMENTED_4XX = {
    (400, "INVALID_INPUT"), (413, "FILE_TOO_LARGE"), (415, "UNSUPPORTED_FORMAT"),
    (422, "INVALID_IMAGE"), (422, "TOO_MANY_PIXELS"), (504, "TIMEOUT"),
}


@dataclass(frozen=True)
class Answer:
    path: Path
    status: int
    code: str
    seconds: float
    problem: str = ""


def _files(corpus: Path, subdirs: tuple[str, ...]) -> list[Path]:
    roots = [corpus / s for s in subdirs if (corpus / s).is_dir()] or [corpus]
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def run_differential(corpus: Path, subdirs: tuple[str, ...], known: Path, jobs: int) -> int:
    """The differential check over the image files of the same folders."""
    from tools import differential

    files = differential.image_files(corpus, subdirs)
    started = time.monotonic()
    report = differential.run(corpus, files, differential.load_known(known), jobs,
                              progress=True)
    print(f"\n{len(files)} files compared in {time.monotonic() - started:.0f}s")
    differential.print_report(report)
    ok = not report.unexplained
    print("differential check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def _send(url: str, path: Path, timeout_s: float,
          fields: dict[str, str] | None = None) -> Answer:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    started = time.monotonic()
    try:
        with path.open("rb") as fh:
            response = requests.post(url + "/api/compress", files={"file": (path.name, fh, mime)},
                                     data=fields or {}, timeout=timeout_s + 30)
    except requests.RequestException as exc:
        return Answer(path, 0, "NO_ANSWER", time.monotonic() - started,
                      f"connection failed: {exc.__class__.__name__}")
    seconds = time.monotonic() - started
    status = response.status_code
    code = "OK"
    problem = ""
    if status != 200:
        try:
            code = str(response.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            code = "NOT_JSON"
            problem = "error answer is not the documented JSON envelope"
    if status >= 500 and status != 504:
        problem = f"server error {status} {code}"
    elif status != 200 and (status, code) not in _DOCUMENTED_4XX:
        problem = problem or f"undocumented answer {status} {code}"
    if seconds > timeout_s + 1:
        problem = problem or f"took {seconds:.1f}s, over the {timeout_s:.0f}s timeout"
    return Answer(path, status, code, seconds, problem)


def run(corpus: Path, subdirs: tuple[str, ...], workers: int, timeout_ms: int,
        concurrency: int, fields: dict[str, str] | None = None) -> int:
    files = _files(corpus, subdirs)
    if not files:
        print(f"no files under {corpus}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="feather-corpus-") as tmp:
        env = {"DATA_DIR": tmp, "RATE_LIMIT_PER_MINUTE": "0",
               "REQUEST_TIMEOUT_MS": str(timeout_ms), "LOG_LEVEL": "WARNING"}
        server = GunicornServer(env, workers=workers).start(Path(tmp))
        try:
            started = time.monotonic()
            with ThreadPoolExecutor(concurrency) as pool:
                answers = []
                for answer in pool.map(
                        lambda p: _send(server.url, p, timeout_ms / 1000, fields), files):
                    answers.append(answer)
                    if len(answers) % 100 == 0:
                        print(f"  {len(answers)}/{len(files)} sent", file=sys.stderr, flush=True)
            wall = time.monotonic() - started
            alive = len(server.worker_pids())
            log = server.log()
        finally:
            server.stop()
    deaths = [line for line in log.splitlines() if _WORKER_DEATH.search(line)]
    return _report(corpus, answers, deaths, alive, workers, wall)


def _report(corpus: Path, answers: list[Answer], deaths: list[str], alive: int,
            workers: int, wall: float) -> int:
    counts = collections.Counter((a.status, a.code) for a in answers)
    print(f"{len(answers)} files in {wall:.0f}s")
    for (status, code), n in sorted(counts.items()):
        print(f"  {status} {code:<20} {n}")
    slowest = sorted(answers, key=lambda a: a.seconds, reverse=True)[:5]
    print("slowest: " + ", ".join(f"{a.path.relative_to(corpus)} {a.seconds:.1f}s"
                                  for a in slowest))
    failures = [a for a in answers if a.problem]
    for a in failures:
        print(f"FAIL {a.path.relative_to(corpus)}: {a.problem}")
    for line in deaths:
        print(f"FAIL worker: {line.strip()}")
    if alive < workers:
        print(f"FAIL only {alive} of {workers} workers alive at the end")
    ok = not failures and not deaths and alive >= workers
    print("corpus check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--subdirs", nargs="*", default=list(DEFAULT_SUBDIRS),
                        help="folders of CORPUS to send (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout-ms", type=int, default=30_000)
    parser.add_argument("--field", action="append", default=[], metavar="NAME=VALUE",
                        help="a form field sent with every file (e.g. mode=preview)")
    parser.add_argument("--no-http", action="store_true", help="skip sending files to gunicorn")
    parser.add_argument("--no-differential", action="store_true",
                        help="skip the comparison with reference decoders")
    parser.add_argument("--known", type=Path, default=ROOT / "tools" / "known_differences.txt",
                        help="known differences (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the comparison")
    args = parser.parse_args(argv)
    status = 0
    if not args.no_http:
        fields = dict(f.split("=", 1) for f in args.field)
        status |= run(args.corpus, tuple(args.subdirs), args.workers, args.timeout_ms,
                      args.concurrency, fields)
    if not args.no_differential:
        status |= run_differential(args.corpus, tuple(args.subdirs), args.known, args.jobs)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
