"""Animated GIF/WebP into WebP keep every frame and its timing; other outputs take frame one."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageSequence

from tests.api import post_image
from tests.helpers import close, open_image, pixel
from tests.images import animated_gif


def _frames(image: Image.Image) -> list[tuple[tuple[int, ...], int]]:
    return [(pixel(f.copy(), 5, 5)[:3], f.info.get("duration", 0))
            for f in ImageSequence.Iterator(image)]


def test_gif_to_webp_keeps_frames_and_timing(client: FlaskClient) -> None:
    gif = animated_gif(frames=5, durations=[100, 200, 300, 120, 80])
    r = post_image(client, gif, "anim.gif", outputFormat="webp")
    out = open_image(r.data)
    assert out.format == "WEBP"
    assert getattr(out, "n_frames", 1) == 5
    frames = _frames(out)
    assert [d for _, d in frames] == [100, 200, 300, 120, 80]
    expected = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    assert all(close(c, e, 25) for (c, _), e in zip(frames, expected, strict=True))


def test_gif_auto_becomes_animated_webp(client: FlaskClient) -> None:
    r = post_image(client, animated_gif(frames=3), "anim.gif")
    out = open_image(r.data)
    assert out.format == "WEBP"
    assert getattr(out, "n_frames", 1) == 3


def test_animated_webp_round_trips_with_edits(client: FlaskClient) -> None:
    webp = post_image(client, animated_gif(frames=3, size=(80, 60)), "a.gif",
                      outputFormat="webp").data
    r = post_image(client, webp, "a.webp", maxWidth=40, flop="true")
    out = open_image(r.data)
    assert out.size == (40, 30)
    assert getattr(out, "n_frames", 1) == 3


@pytest.mark.parametrize("fmt", ["jpeg", "png", "avif"])
def test_still_outputs_take_the_first_frame(client: FlaskClient, fmt: str) -> None:
    r = post_image(client, animated_gif(frames=3), "anim.gif", outputFormat=fmt)
    out = open_image(r.data)
    assert getattr(out, "n_frames", 1) == 1
    assert close(pixel(out, 5, 5)[:3], (255, 0, 0), 25)
