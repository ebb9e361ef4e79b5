"""Job processes: killed on time, held under a memory ceiling, dying alone."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feather_core import CompressOptions, Limits
from feather_core.errors import ProcessingFailed, ProcessingTimeout, TooManyPixels
from feather_core.runner import JobInput, JobRunner, wait_all
from tests.faults import crashing_encoders
from tests.images import encode, photo

MB = 1024 * 1024


def _noise_png(side: int) -> bytes:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def job_facts() -> dict[str, object]:
    """What a job process sees of itself (run in the job process)."""
    sockets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                sockets.append(int(fd))
        except OSError:
            pass
    try:
        socket.socket()
        network = True
    except OSError:
        network = False
    return {"pid": os.getpid(), "data_limit": resource.getrlimit(resource.RLIMIT_DATA)[0],
            "sockets": sockets, "network": network}


def burn(seconds: float) -> int:
    """Spin the CPU in the job process and report its pid."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return os.getpid()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    jobs = JobRunner(1, 512 * MB)
    yield jobs
    jobs.close()


def test_job_runs_elsewhere_under_its_ceiling_without_the_callers_sockets(
        runner: JobRunner) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        facts = runner.submit_call(job_facts).result(timeout=60)
    finally:
        listener.close()
    assert facts["pid"] != os.getpid()
    assert facts["data_limit"] == 512 * MB
    # Not forked from the caller: a client connection of a gunicorn worker would
    # otherwise stay open as long as a job process lived.
    assert facts["sockets"] == []
    assert facts["network"] is False


def test_job_past_its_deadline_is_killed_and_its_cpu_freed(runner: JobRunner) -> None:
    pid = runner.submit_call(job_facts).result(timeout=60)["pid"]
    assert isinstance(pid, int)
    started = time.monotonic()
    job = runner.submit_call(burn, 30.0, expires_at=time.monotonic() + 0.5)
    with pytest.raises(ProcessingTimeout):
        job.result()
    assert time.monotonic() - started < 2.0
    # The process is gone within a second: nothing keeps burning the CPU.
    deadline = time.monotonic() + 1.0
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not Path(f"/proc/{pid}").exists() or cpu_seconds(pid) < 0.1
    # A new job process takes the next job.
    assert runner.submit_call(burn, 0.0).result(timeout=60) != pid


def test_compress_past_the_deadline_is_a_timeout(runner: JobRunner) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessingTimeout):
        runner.compress(_noise_png(1000), CompressOptions(output_format="avif", effort=9),
                        Limits(timeout=0.3))
    assert time.monotonic() - started < 1.5
    small = runner.compress(encode(photo(64, 48), "PNG"), CompressOptions(output_format="webp"),
                            Limits(timeout=30))
    assert small.format.name == "webp"


def test_job_over_its_ceiling_fails_alone() -> None:
    jobs = JobRunner(1, 200 * MB)
    try:
        from PIL import Image

        # 9000 x 9000 decodes to 324 MB (Pillow keeps 4 bytes a pixel), from a PNG of a
        # few hundred kilobytes: a bomb the pixel budget was set too high to catch.
        big = encode(Image.new("RGB", (9000, 9000), (200, 30, 30)), "PNG")
        with pytest.raises(TooManyPixels, match="memory"):
            jobs.compress(big, CompressOptions(output_format="webp"),
                          Limits(max_pixels=100_000_000, timeout=60))
        again = jobs.compress(encode(photo(64, 48), "PNG"), CompressOptions(), Limits())
        assert again.width == 64
    finally:
        jobs.close()


def test_a_crashing_codec_takes_down_its_job_process_only() -> None:
    jobs = JobRunner(1, None, crashing_encoders)
    try:
        with pytest.raises(ProcessingFailed, match="died"):
            jobs.compress(encode(photo(64, 48), "PNG"), CompressOptions(), Limits(timeout=30))
    finally:
        jobs.close()


def test_wait_all_keeps_one_deadline_for_many_jobs() -> None:
    jobs = JobRunner(2, None)
    try:
        jobs.submit_call(burn, 0.0).result(timeout=60)  # processes started
        deadline = time.monotonic() + 1.0
        submitted = [jobs.submit_call(burn, seconds, expires_at=deadline)
                     for seconds in (0.1, 30.0, 30.0, 0.1)]
        results = wait_all(submitted, deadline)
        assert time.monotonic() - deadline < 1.0
        assert isinstance(results[0], int)
        assert isinstance(results[1], ProcessingTimeout)
        assert isinstance(results[2], ProcessingTimeout)
    finally:
        jobs.close()


def test_spooled_input_is_read_in_the_job(runner: JobRunner, tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(encode(photo(80, 60), "PNG"))
    job = runner.submit(JobInput(path=str(path)), CompressOptions(output_format="jpeg"),
                        Limits(timeout=30))
    assert job.result().format.name == "jpeg"
