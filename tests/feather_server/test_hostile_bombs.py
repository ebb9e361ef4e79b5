"""Header bombs: images that declare far more pixels or frames than they carry.

Every one is refused 422 TOO_MANY_PIXELS from its header, before a pixel is decoded.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image

from feather_core.errors import TooManyPixels
from feather_core.frames import gif_frames
from feather_core.options import Limits
from feather_core.sniff import declared_size
from feather_server import create_app
from feather_server.settings import Settings
from tests import hostile
from tests.images import animated_gif, encode, photo
from tests.paths import ROOT

FORMATS = sorted(hostile.HEADER_BUILDERS)


def _post(client: FlaskClient, data: bytes, name: str = "bomb.bin") -> tuple[int, dict]:
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), name)})
    return response.status_code, response.get_json(silent=True) or {}


@pytest.mark.parametrize("side", [50_000, 65_535])
@pytest.mark.parametrize("fmt", FORMATS)
def test_header_bomb_is_refused_as_too_many_pixels(client: FlaskClient, fmt: str,
                                                   side: int) -> None:
    data = hostile.HEADER_BUILDERS[fmt](side, side)
    assert len(data) < 5_000
    status, body = _post(client, data, f"bomb.{fmt}")
    assert status == 422, body
    assert body["error"]["code"] == "TOO_MANY_PIXELS"


@pytest.mark.parametrize("fmt", ["png", "jpeg", "tiff", "bmp", "gif"])
def test_between_pillow_warning_and_error_thresholds(client: FlaskClient, fmt: str) -> None:
    # 100 MP: over Pillow's warning (89 MP) but under its error (179 MP); ours is 50 MP.
    assert Image.MAX_IMAGE_PIXELS < 10_000 ** 2 < 2 * Image.MAX_IMAGE_PIXELS  # type: ignore[operator]
    status, body = _post(client, hostile.HEADER_BUILDERS[fmt](10_000, 10_000))
    assert (status, body["error"]["code"]) == (422, "TOO_MANY_PIXELS")


def test_the_budget_is_the_configured_max_pixels(tmp_path: Path) -> None:
    settings = Settings.from_env({"MAX_PIXELS": "10000"}, data_dir=str(tmp_path),
                                 rate_limit_per_minute=0)
    client = create_app(settings).test_client()
    small = encode(photo(100, 100), "PNG")
    big = encode(photo(101, 100), "PNG")
    assert _post(client, small, "a.png")[0] == 200
    status, body = _post(client, big, "b.png")
    assert (status, body["error"]["code"]) == (422, "TOO_MANY_PIXELS")
    assert "10,000" in body["error"]["message"]


def test_hundred_thousand_frame_gif_is_refused(client: FlaskClient) -> None:
    data = hostile.many_frames_gif(100_000)
    status, body = _post(client, data, "frames.gif")
    assert (status, body["error"]["code"]) == (422, "TOO_MANY_PIXELS")
    assert "frames" in body["error"]["message"]


def test_frame_count_cap_comes_from_settings(tmp_path: Path) -> None:
    settings = Settings.from_env({"MAX_FRAMES": "3"}, data_dir=str(tmp_path),
                                 rate_limit_per_minute=0)
    client = create_app(settings).test_client()
    assert _post(client, animated_gif(3), "three.gif")[0] == 200
    status, body = _post(client, animated_gif(4), "four.gif")
    assert (status, body["error"]["code"]) == (422, "TOO_MANY_PIXELS")


def test_gif_frame_pixels_are_summed() -> None:
    # A 1x1 screen whose frames each declare 4000 x 4000: 16 MP each, 64 MP in four.
    data = hostile.gif_header(1, 1, frames=4, frame_size=(4000, 4000))
    assert gif_frames(data, max_frames=1000, max_pixels=100_000_000) == 4
    with pytest.raises(TooManyPixels):
        gif_frames(data, max_frames=1000, max_pixels=50_000_000)


def test_gif_frame_counter_agrees_with_pillow() -> None:
    for frames in (1, 2, 7):
        data = animated_gif(frames)
        with Image.open(io.BytesIO(data)) as im:
            assert gif_frames(data, 1000, 10**9) == getattr(im, "n_frames", 1) == frames


def test_truncated_gif_is_counted_up_to_the_break() -> None:
    data = hostile.gif_header(10, 10, frames=5)
    assert gif_frames(data[: len(data) // 2], 1000, 10**9) >= 1


@pytest.mark.parametrize(("fmt", "expected"), [("heic", (3000, 2000)), ("avif", (3000, 2000)),
                                          ("webp", (3000, 2000)), ("png", None)])
def test_declared_size_reads_the_header(fmt: str, expected: tuple[int, int] | None) -> None:
    data = hostile.HEADER_BUILDERS[fmt](3000, 2000)
    assert declared_size(fmt, data) == expected


def test_real_heic_and_avif_declare_their_size() -> None:
    # The largest extent is read: a coded HEVC image may be padded past the visible size.
    image = photo(64, 48)
    for fmt, name in (("HEIF", "heic"), ("AVIF", "avif")):
        size = declared_size(name, encode(image, fmt))
        assert size is not None
        assert 64 <= size[0] <= 128
        assert 48 <= size[1] <= 128


_MEASURE = """
import json, resource, sys, time
from feather_core.decode import open_source
from feather_core.errors import TooManyPixels
from feather_core.options import Limits
from tests import hostile
from tests.images import encode, photo

# Warm every plugin up on a real image first, so only the bombs' cost is measured.
small = photo(32, 32)
for fmt in ("PNG", "GIF", "TIFF", "BMP", "JPEG", "WEBP", "HEIF", "AVIF"):
    open_source(encode(small, fmt), Limits()).image.load()
bombs = [(f, s, b(s, s)) for s in (50_000, 65_535) for f, b in hostile.HEADER_BUILDERS.items()]
bombs.append(("gif-frames", 100_000, hostile.many_frames_gif(100_000)))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = {}
for fmt, side, data in bombs:
    started = time.perf_counter()
    try:
        open_source(data, Limits())
    except TooManyPixels:
        pass
    else:
        raise SystemExit(f"{fmt} {side} was not refused")
    times[f"{fmt}-{side}"] = round((time.perf_counter() - started) * 1000, 2)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"extra_kb": after - before, "ms": times}))
"""


def test_bombs_cost_little_memory_and_time() -> None:
    """All header bombs in one fresh process: peak memory grows under 20 MB."""
    done = subprocess.run([sys.executable, "-c", _MEASURE], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(figures)
    assert figures["extra_kb"] < 20 * 1024, figures
    # Decided from headers: far under a second each even on a busy machine (50 ms is typical).
    assert max(figures["ms"].values()) < 1000, figures


def test_library_refuses_before_decoding() -> None:
    from feather_core import CompressOptions, compress

    with pytest.raises(TooManyPixels):
        compress(hostile.png_header(65_535, 65_535), CompressOptions(), Limits())
