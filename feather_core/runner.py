"""Image jobs in processes that can be killed: on time, and past a memory ceiling.

Decoding, editing and encoding run in a pool of worker processes (pebble's
``ProcessPool``), never in the caller's own process or threads:

- A job past its deadline is killed (SIGKILL: an encoder deep in C never returns to
  Python to notice a softer signal) and its process replaced; its CPU is free at once.
- Each worker process runs under an address-space ceiling set by the operating system
  (``RLIMIT_DATA``): a job that outgrows it fails alone, with ``TooManyPixels`` when
  Python sees the allocation fail and ``ProcessingFailed`` when a codec dies of it.
- A crashed codec takes down its worker process, never the caller.

The caller (a gunicorn worker, the command line) keeps one ``JobRunner`` and submits
jobs; the pool is started on first use in the process that uses it, and started again
after a fork.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessFuture, ProcessPool

from feather_core.allocator import keep_freed_memory
from feather_core.compress import CompressResult, compress
from feather_core.errors import (
    FeatherError,
    ProcessingFailed,
    ProcessingTimeout,
    TooManyPixels,
)
from feather_core.options import CompressOptions, Limits

T = TypeVar("T")

# Everything a job process needs that is not the job itself: a few MB of Python and
# the codecs, plus the allocator's retained buffers.
MEMORY_FLOOR = 256 * 1024 * 1024
# Pillow keeps every pixel in 4 bytes; a job holds the decoded frames, one edited copy
# and the encoder's buffers at once. Six times the largest image it may decode: a 50 MP
# picture with alpha made into WebP peaked at 1,272 MB (1,345 MB with quality=auto),
# over the four times (1,056 MiB) this once was.
BYTES_PER_PIXEL_BUDGET = 24
# Workers are replaced after this many jobs, so a codec's slow leak cannot build up.
JOBS_PER_PROCESS = 200
# Slack between the job's own deadline and the moment the caller gives up on it: the
# job stops by itself a little earlier (the target-size search returns its best).
_RESULT_GRACE = 0.25

_in_job_process = False


def default_memory_limit(max_pixels: int) -> int:
    """The memory ceiling of a job that may decode ``max_pixels``, in bytes."""
    return MEMORY_FLOOR + max_pixels * BYTES_PER_PIXEL_BUDGET


def in_job_process() -> bool:
    """Whether this code runs inside a job process (which is already isolated)."""
    return _in_job_process


def _die_with_parent() -> None:
    # A job process must not outlive its caller (a worker killed with SIGKILL).
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class _NoSocket(socket.socket):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("network access is disabled in image jobs")


def _forbid_network() -> None:
    # Image work never needs the network; a decoder tricked into fetching something
    # (an SVG's external reference) gets an error instead of a connection.
    socket.socket = _NoSocket  # type: ignore[misc]
    socket.create_connection = _NoSocket


def _let_the_fork_server_go() -> None:
    # Every process the fork server starts inherits the write end of the pipe whose
    # end-of-file tells the server its client is gone, so it lives as long as any of its
    # children. A job process starts no processes: it lets go of that end, so that when
    # the caller dies the server exits, and its job processes die with it.
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        with contextlib.suppress(OSError):
            os.close(alive)
        setattr(server, "_forkserver_alive_fd", None)  # noqa: B010 - a private attribute


def _start_job_process(memory_limit: int | None, setup: Callable[[], None] | None) -> None:
    global _in_job_process
    _in_job_process = True
    _let_the_fork_server_go()
    _die_with_parent()
    _forbid_network()
    # pebble stops a worker with SIGTERM and waits up to three seconds before SIGKILL; a
    # Python handler would only run once the codec returns, so the default action
    # (terminate now) is restored.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if memory_limit is not None:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_limit, memory_limit))
    keep_freed_memory()
    if setup is not None:
        setup()


@dataclass(frozen=True)
class JobInput:
    """The bytes of an image, or the path of a file holding them (spooled uploads)."""

    data: bytes | None = None
    path: str | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError("a job input needs data or a path")
        return Path(self.path).read_bytes()


def _compress_job(source: JobInput, options: CompressOptions, limits: Limits,
                  expires_at: float | None) -> CompressResult:
    """The job run in a worker process: the library's ``compress``, on the caller's clock."""
    if expires_at is not None:
        # time.monotonic() is the system-wide CLOCK_MONOTONIC on Linux, so a deadline
        # taken in the caller means the same instant here.
        limits = replace(limits, timeout=max(0.0, expires_at - time.monotonic()))
    try:
        return compress(source.read(), options, limits)
    except MemoryError:
        raise TooManyPixels("The image needs more memory than a job may use") from None


def _job_context() -> Any:
    # Job processes are forked from a clean server process, not from the caller: a fork
    # of a gunicorn worker would inherit its sockets (a client connection would then
    # stay open until the job process ended) and the locks its other threads hold.
    # The server imports the codecs once, so each new job process starts in
    # milliseconds.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["feather_core._job_preload"])
    return context


def _start_pool(pool: ProcessPool, ready: threading.Event) -> None:
    try:
        pool.active  # noqa: B018 - pebble starts a pool when its state is first read
    finally:
        ready.set()


class Job:
    """A submitted job: wait for its result, or cancel it (which kills its process)."""

    def __init__(self, future: ProcessFuture[Any], expires_at: float | None) -> None:
        self._future = future
        self.expires_at = expires_at

    def result(self, timeout: float | None = None) -> Any:
        """The job's result; raises what the job raised, mapped to ``FeatherError``s.

        ``timeout`` (seconds) defaults to the time left before the job's deadline;
        past it the job is killed and ``ProcessingTimeout`` raised.
        """
        if timeout is None and self.expires_at is not None:
            timeout = max(0.0, self.expires_at - time.monotonic()) + _RESULT_GRACE
        try:
            return self._future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            self.cancel()
            raise ProcessingTimeout("Processing took longer than the time allowed") from None
        except concurrent.futures.CancelledError:
            raise ProcessingTimeout("Processing took longer than the time allowed") from None
        except FeatherError:
            raise
        except ProcessExpired as exc:
            raise ProcessingFailed(_death_message(exc.exitcode)) from None
        except MemoryError:
            raise TooManyPixels("The image needs more memory than a job may use") from None
        except Exception as exc:
            raise ProcessingFailed(f"The image could not be processed: {exc}") from exc

    @property
    def future(self) -> concurrent.futures.Future[Any]:
        """The underlying future, for ``concurrent.futures.wait``."""
        return self._future

    def done(self) -> bool:
        return self._future.done()

    def cancel(self) -> None:
        """Stop the job: a queued one never starts, a running one's process is killed."""
        self._future.cancel()  # type: ignore[no-untyped-call]


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"The image could not be processed: the job process died ({name})"
    return "The image could not be processed: the job process died"


class JobRunner:
    """A pool of ``processes`` job processes, each under ``memory_limit`` bytes.

    ``setup``, a module-level function, runs in each job process as it starts (after
    its limits are set): codecs to register, faults to inject in tests.
    """

    def __init__(self, processes: int, memory_limit: int | None,
                 setup: Callable[[], None] | None = None) -> None:
        self.processes = max(1, processes)
        self.memory_limit = memory_limit
        self.setup = setup
        self._pool: ProcessPool | None = None
        self._ready = threading.Event()
        self._owner = 0
        self._lock = threading.Lock()

    def _current_pool(self) -> tuple[ProcessPool, threading.Event]:
        with self._lock:
            pool, ready = self._pool, self._ready
            if pool is not None and (self._owner != os.getpid()
                                     or (ready.is_set() and not pool.active)):
                pool = None  # forked since, or broken: its processes are not ours
            if pool is None:
                pool = ProcessPool(
                    max_workers=self.processes, max_tasks=JOBS_PER_PROCESS,
                    initializer=_start_job_process, initargs=(self.memory_limit, self.setup),
                    context=_job_context(),
                )
                ready = threading.Event()
                self._pool, self._ready, self._owner = pool, ready, os.getpid()
                # Starting the pool starts the fork server, which imports the codecs: a
                # second or more. It happens on a thread of its own, so that a caller
                # with a deadline waits no longer than its deadline.
                threading.Thread(target=_start_pool, args=(pool, ready),
                                 name="feather-job-pool", daemon=True).start()
            return pool, ready

    def submit_call(self, function: Callable[..., T], *args: Any,
                    expires_at: float | None = None) -> Job:
        """Run ``function(*args)`` in a job process; killed at ``expires_at`` (monotonic)."""
        for attempt in (1, 2):
            pool, ready = self._current_pool()
            wait = None if expires_at is None else max(0.0, expires_at - time.monotonic())
            if not ready.wait(wait):
                raise ProcessingTimeout("Processing took longer than the time allowed")
            timeout = None if expires_at is None else max(0.01, expires_at - time.monotonic())
            try:
                return Job(pool.schedule(function, args=args, timeout=timeout), expires_at)
            except (RuntimeError, BrokenProcessPool):
                # A pool whose processes all died (killed from outside): start a new one.
                self._discard_pool()
                if attempt == 2:
                    raise ProcessingFailed("The job processes could not be started") from None
        raise AssertionError("unreachable")

    def _discard_pool(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._owner == os.getpid():
            with contextlib.suppress(Exception):
                pool.stop()  # type: ignore[no-untyped-call]

    def submit(self, source: JobInput, options: CompressOptions, limits: Limits,
               expires_at: float | None = None) -> Job:
        """Compress ``source`` in a job process, killed at ``expires_at`` (monotonic)."""
        if expires_at is None and limits.timeout is not None:
            expires_at = time.monotonic() + limits.timeout
        return self.submit_call(_compress_job, source, options, limits, expires_at,
                                expires_at=expires_at)

    def compress(self, data: bytes, options: CompressOptions, limits: Limits) -> CompressResult:
        """Compress in a job process and wait for it; ``limits.timeout`` kills it."""
        result: CompressResult = self.submit(JobInput(data=data), options, limits).result()
        return result

    def close(self) -> None:
        """Stop every job process now (pending jobs are cancelled)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._owner == os.getpid():
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join(timeout=5)


_isolated: dict[int, JobRunner] = {}
_isolated_lock = threading.Lock()


def isolated(memory_limit: int) -> JobRunner:
    """A one-process runner for work the library must isolate when a caller runs it
    outside any job process (SVG rendering); kept for later calls."""
    with _isolated_lock:
        runner = _isolated.get(memory_limit)
        if runner is None:
            runner = _isolated[memory_limit] = JobRunner(1, memory_limit)
        return runner


def wait_all(jobs: Sequence[Job], deadline: float | None) -> list[Any]:
    """Each job's result or the ``FeatherError`` it ended with, by ``deadline`` (monotonic).

    Jobs still running at the deadline are killed and end as ``ProcessingTimeout``.
    """
    results: list[Any] = []
    for job in jobs:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            results.append(job.result(timeout=remaining))
        except FeatherError as exc:
            results.append(exc)
    return results
