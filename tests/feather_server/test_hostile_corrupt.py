"""Broken, truncated and odd files, generated here in the kinds the real corpus holds.

Each gets 200 or a documented 4xx JSON error, never a 500.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image

from tests import hostile
from tests.helpers import open_image
from tests.images import animated_gif, encode, photo
from tests.paths import RESOURCES

DOCUMENTED = {(200, None), (415, "UNSUPPORTED_FORMAT"), (422, "INVALID_IMAGE"),
              (422, "TOO_MANY_PIXELS")}


def _answer(client: FlaskClient, data: bytes, name: str = "file.bin") -> tuple[int, str | None]:
    response = client.post("/api/compress", data={"file": (io.BytesIO(data), name)})
    if response.status_code == 200:
        return 200, None
    body = response.get_json()
    assert body is not None, response.data[:200]
    return response.status_code, body["error"]["code"]


def _valid(fmt: str) -> bytes:
    image = photo(96, 64, mode="RGBA" if fmt in ("PNG", "WEBP") else "RGB")
    return encode(image, fmt)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_files(client: FlaskClient, fmt: str, fraction: float) -> None:
    data = _valid(fmt)
    answer = _answer(client, data[: max(8, int(len(data) * fraction))])
    assert answer in DOCUMENTED, answer


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"])
def test_bit_flipped_files(client: FlaskClient, fmt: str) -> None:
    data = bytearray(_valid(fmt))
    rng = random.Random(fmt)
    for attempt in range(6):
        mutated = bytearray(data)
        for _ in range(1 + attempt * 3):
            position = rng.randrange(min(len(mutated), 400))
            mutated[position] = rng.randrange(256)
        answer = _answer(client, bytes(mutated))
        assert answer in DOCUMENTED, (attempt, answer)


@pytest.mark.parametrize("data", [b"", b"\x89PNG", b"\x00" * 1000, bytes(range(256)) * 4,
                                  b"GIF89a" + b"\xff" * 20, b"RIFF\x00\x00\x00\x00WEBPVP8 ",
                                  b"II*\x00\xff\xff\xff\xff", b"BM" + b"\xff" * 60,
                                  b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40,
                                  b"<svg", b"<html><body>hi</body></html>"])
def test_garbage(client: FlaskClient, data: bytes) -> None:
    answer = _answer(client, data)
    assert answer in DOCUMENTED | {(400, "INVALID_INPUT")}, answer


def _odd(mode: str) -> bytes:
    grey = photo(64, 48).convert("L")
    if mode == "I;16":
        return encode(grey.convert("I").point(lambda v: v * 257).convert("I;16"), "PNG")
    if mode in ("I", "F"):
        return encode(grey.convert(mode), "TIFF")
    if mode == "P-key":
        return encode(photo(64, 48).convert("P"), "PNG", transparency=0)
    if mode == "CMYK":
        return encode(photo(64, 48).convert("CMYK"), "JPEG")
    if mode == "LAB":
        return encode(photo(64, 48).convert("LAB"), "TIFF")
    return encode(grey.convert(mode) if mode in ("1", "LA", "L") else
                  photo(64, 48).convert(mode), "PNG")


@pytest.mark.parametrize("mode", ["CMYK", "LAB", "I;16", "I", "F", "1", "LA", "P", "P-key", "L"])
def test_odd_modes_decode(client: FlaskClient, mode: str) -> None:
    response = client.post("/api/compress", data={"file": (io.BytesIO(_odd(mode)), "odd")})
    assert response.status_code == 200, response.get_json()
    assert open_image(response.data).size == (64, 48)


def test_rgb_colour_key_transparency_survives(client: FlaskClient) -> None:
    image = Image.new("RGB", (40, 40), (0, 255, 52))
    image.paste((200, 10, 10), (10, 10, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=(0, 255, 52))
    response = client.post("/api/compress", data={"file": (io.BytesIO(buffer.getvalue()),
                                                            "key.png")})
    assert response.status_code == 200, response.get_json()
    out = open_image(response.data).convert("RGBA")
    assert out.getpixel((0, 0))[3] == 0
    assert out.getpixel((20, 20)) == (200, 10, 10, 255)


def test_multipage_tiff_with_pages_of_different_sizes(client: FlaskClient) -> None:
    buffer = io.BytesIO()
    first = photo(60, 40)
    first.save(buffer, "TIFF", save_all=True, append_images=[photo(30, 90, seed=1)])
    response = client.post("/api/compress", data={"file": (io.BytesIO(buffer.getvalue()),
                                                            "pages.tiff")})
    assert response.status_code == 200, response.get_json()
    assert open_image(response.data).size == (60, 40)


def test_gif_frame_larger_than_its_screen(client: FlaskClient) -> None:
    # The second frame reaches past the 20x20 logical screen (Pillow grows the image).
    data = bytearray(hostile.gif_header(20, 20, frames=2, frame_size=(20, 20)))
    second = data.rindex(b"\x2c")
    data[second + 5 : second + 9] = (40).to_bytes(2, "little") + (30).to_bytes(2, "little")
    answer = _answer(client, bytes(data), "grow.gif")
    assert answer in DOCUMENTED, answer


def test_animation_still_works(client: FlaskClient) -> None:
    response = client.post("/api/compress", data={"file": (io.BytesIO(animated_gif(3)),
                                                            "a.gif")})
    assert response.status_code == 200
    with Image.open(io.BytesIO(response.data)) as out:
        assert out.format == "WEBP"
        assert getattr(out, "n_frames", 1) == 3


FUZZ_FINDINGS = sorted((RESOURCES / "fuzz").glob("*.bin"))


@pytest.mark.parametrize("path", FUZZ_FINDINGS, ids=[p.name for p in FUZZ_FINDINGS])
def test_fuzz_findings_stay_fixed(client: FlaskClient, path: Path) -> None:
    answer = _answer(client, path.read_bytes()[1:], path.stem)
    assert answer in DOCUMENTED, answer
