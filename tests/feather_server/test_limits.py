"""Every pixel counted before it is allocated, and limits that hold on a real gunicorn.

Bombs nobody foresaw are refused from what the bytes declare (a GIF whose frames leave
its screen, a thin watermark scaled to a wide photo, a rotation's larger canvas); jobs
past their deadline are killed and their CPU freed; a job over its memory dies alone.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from feather_core import CompressOptions, Edits, Limits, Watermark, compress
from feather_core.decode import open_source
from feather_core.errors import TooManyPixels
from feather_core.runner import JobRunner
from tests.helpers import open_image, pixel
from tests.images import encode, photo
from tests.processes import cpu_ticks, descendants, status_kb
from tests.server import GunicornServer

MB = 1024 * 1024


def far_flung_gif(offset: int = 8000) -> bytes:
    """A GIF with a 1 × 1 screen whose two 1 × 1 frames sit ``offset`` pixels away."""
    frames = [Image.new("P", (1, 1), i) for i in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    data = bytearray(buffer.getvalue())
    at = 0
    while (at := data.find(b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00", at)) != -1:
        data[at + 1:at + 5] = offset.to_bytes(2, "little") * 2  # left, top
        at += 9
    return bytes(data)


def test_gif_frames_outside_their_screen_count_at_the_canvas_they_grow() -> None:
    data = far_flung_gif()
    assert len(data) < 600
    started = time.monotonic()
    with pytest.raises(TooManyPixels, match="canvas"):
        open_source(data, Limits(max_pixels=50_000_000))
    assert time.monotonic() - started < 0.1
    # Within budget it decodes, on the grown canvas.
    small = far_flung_gif(offset=20)
    result = compress(small, CompressOptions(output_format="png"), Limits())
    assert (result.width, result.height) == (21, 21)


def thin_mark() -> bytes:
    return encode(Image.new("RGBA", (1, 400), (255, 0, 0, 255)), "PNG")


def test_a_thin_watermark_scaled_wide_only_makes_the_rows_it_shows() -> None:
    base = encode(Image.new("RGB", (4000, 3000), (10, 200, 10)), "JPEG", quality=90)
    options = CompressOptions(output_format="png",
                              watermark=Watermark(thin_mark(), scale=50, opacity=100,
                                                  position="TL"))
    # Scaled naively the mark is 2000 × 800,000 pixels (6.4 GB of RGBA); in a job process
    # held to 600 MB it must still finish.
    runner = JobRunner(1, 600 * MB)
    try:
        result = runner.compress(base, options, Limits(timeout=120))
    finally:
        runner.close()
    image = open_image(result.data)
    assert image.size == (4000, 3000)
    assert pixel(image, 1000, 2900)[:3] == (255, 0, 0)  # the strip covers to the bottom
    assert pixel(image, 3500, 1500)[:3] != (255, 0, 0)  # and half the width only


def test_a_watermark_larger_than_the_budget_is_refused() -> None:
    base = encode(photo(200, 100), "PNG")
    mark = encode(Image.new("RGBA", (3000, 3000), (0, 0, 0, 128)), "PNG")
    with pytest.raises(TooManyPixels, match="watermark"):
        compress(base, CompressOptions(watermark=Watermark(mark)), Limits(max_pixels=1_000_000))


def test_a_rotation_counts_the_canvas_it_grows_to() -> None:
    data = encode(photo(1000, 1000), "PNG")
    limits = Limits(max_pixels=1_500_000)
    assert compress(data, CompressOptions(edits=Edits(rotate=90)), limits).width == 1000
    with pytest.raises(TooManyPixels, match="rotated"):
        compress(data, CompressOptions(edits=Edits(rotate=45)), limits)


# On a real gunicorn.


def noise_png(side: int, seed: int = 0) -> bytes:
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    data = tmp_path_factory.mktemp("limited")
    server = GunicornServer({"DATA_DIR": str(data), "RATE_LIMIT_PER_MINUTE": "0",
                             "REQUEST_TIMEOUT_MS": "1500", "MAX_PIXELS": "200000000",
                             "MAX_JOB_MEMORY_MB": "300", "JOB_PROCESSES": "2"}, workers=2)
    server.start(data)
    yield server
    server.stop()


def test_a_job_past_the_deadline_is_killed_and_the_next_request_served(
        limited: GunicornServer) -> None:
    noise = noise_png(1000)
    started = time.monotonic()
    answer = requests.post(limited.url + "/api/compress", files={"file": ("noise.png", noise)},
                           data={"outputFormat": "avif", "effort": "9"}, timeout=30)
    elapsed = time.monotonic() - started
    assert answer.status_code == 504, answer.text
    assert answer.json()["error"]["code"] == "TIMEOUT"
    assert elapsed < 1.5 + 1.0
    # Within a second no job process of any worker burns the CPU any more.
    time.sleep(1.0)
    jobs = [p for w in limited.worker_pids() for p in descendants(w)]
    before = {p: cpu_ticks(p) for p in jobs}
    time.sleep(0.5)
    assert all(cpu_ticks(p) - before[p] <= 2 for p in jobs), "a killed job still runs"
    ok = requests.post(limited.url + "/api/compress",
                       files={"file": ("p.png", encode(photo(64, 48), "PNG"))}, timeout=30)
    assert ok.status_code == 200
    assert "WORKER TIMEOUT" not in limited.log()


def test_a_job_over_its_memory_fails_alone(limited: GunicornServer) -> None:
    # 9000 × 9000 is under this server's pixel budget but needs 324 MB decoded: more
    # than its 300 MB jobs may use.
    bomb = encode(Image.new("RGB", (9000, 9000), (200, 30, 30)), "PNG")
    answer = requests.post(limited.url + "/api/compress", files={"file": ("big.png", bomb)},
                           data={"outputFormat": "webp"}, timeout=60)
    assert answer.status_code in (422, 500), answer.text
    code = answer.json()["error"]["code"]
    assert code == ("TOO_MANY_PIXELS" if answer.status_code == 422 else "PROCESSING_FAILED")
    ok = requests.post(limited.url + "/api/compress",
                       files={"file": ("p.png", encode(photo(64, 48), "PNG"))}, timeout=30)
    assert ok.status_code == 200
    assert "WORKER TIMEOUT" not in limited.log()
    assert "Perhaps out of memory" not in limited.log()


HOG = "import time\nwhile True:\n    pass\n"


@pytest.fixture
def cpu_hogs() -> Iterator[None]:
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


@pytest.fixture
def deadline_only(tmp_path: Path) -> Iterator[GunicornServer]:
    """The short deadline of ``limited`` with the default memory ceiling: a slow AVIF
    encode may then only end by the deadline, not by running out of memory."""
    server = GunicornServer({"DATA_DIR": str(tmp_path / "var"), "RATE_LIMIT_PER_MINUTE": "0",
                             "REQUEST_TIMEOUT_MS": "1500", "JOB_PROCESSES": "2"}, workers=2)
    server.start(tmp_path)
    yield server
    server.stop()


def test_a_batch_keeps_its_deadline_on_a_busy_machine(deadline_only: GunicornServer,
                                                      cpu_hogs: None) -> None:
    limited = deadline_only
    files = [("file", (f"n{i}.png", noise_png(700, seed=i))) for i in range(8)]
    started = time.monotonic()
    answer = requests.post(limited.url + "/api/batch", files=files,
                           data={"format": "avif", "effort": "9"}, timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 1.0, elapsed
    body = answer.json()
    codes = [e["code"] for e in body.get("errors", [])]
    assert codes, body
    assert set(codes) == {"TIMEOUT"}, body
    assert len(body.get("data", [])) + len(codes) == 8
    assert "WORKER TIMEOUT" not in limited.log()


@pytest.fixture
def roomy(tmp_path: Path) -> Iterator[GunicornServer]:
    server = GunicornServer({"DATA_DIR": str(tmp_path / "var"), "RATE_LIMIT_PER_MINUTE": "0",
                             "JOB_PROCESSES": "2"}, workers=2)
    server.start(tmp_path)
    yield server
    server.stop()


def test_memory_of_a_batch_stays_bounded(roomy: GunicornServer) -> None:
    limited = roomy
    photos = [encode(photo(2000, 1500, seed=i), "JPEG", quality=90) for i in range(20)]
    peaks: list[int] = []
    import threading

    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total = sum(status_kb(w, "VmRSS") + sum(status_kb(p, "VmRSS") for p in descendants(w))
                        for w in limited.worker_pids())
            peaks.append(total)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        answer = requests.post(limited.url + "/api/batch",
                               files=[("file", (f"p{i}.jpg", p)) for i, p in enumerate(photos)],
                               data={"format": "webp", "maxWidth": "1600"}, timeout=120)
    finally:
        done.set()
        sampler.join()
    assert answer.status_code == 200
    # Two workers with two job processes each, 20 photos of 3 MP: the jobs hold one
    # photo each at a time, never the whole batch decoded.
    assert max(peaks) < 900 * 1024, f"peak {max(peaks) / 1024:.0f} MB"
