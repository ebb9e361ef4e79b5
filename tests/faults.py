"""Faults injected into job processes, and an app whose jobs run with them.

The functions run in each job process as it starts (``JobRunner(setup=...)``), so the
fault happens where the real work happens: in the job process, not in the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from feather_core.runner import JobRunner
from feather_server.services import processing
from feather_server.settings import Settings


def broken_encoders() -> None:
    from PIL import Image

    def broken(*args: object, **params: object) -> None:
        raise OSError("encoder exploded")

    Image.Image.save = broken  # type: ignore[method-assign]


def slow_png_encoder() -> None:
    from feather_core import encode

    def slow_png(*args: object, **kwargs: object) -> bytes:
        time.sleep(3)
        return b""

    encode.ENCODERS["png"] = slow_png


def png_loader_raising_type_error() -> None:
    from PIL import Image, PngImagePlugin

    def broken_load(self: Image.Image) -> None:
        raise TypeError("'NoneType' object is not subscriptable")

    PngImagePlugin.PngImageFile.load = broken_load  # type: ignore[method-assign,assignment]


def crashing_encoders() -> None:
    import os

    from PIL import Image

    def crash(*args: object, **params: object) -> None:
        os.abort()  # what a codec's segfault looks like from outside

    Image.Image.save = crash  # type: ignore[method-assign]


@contextmanager
def jobs_with(setup: Callable[[], None], monkeypatch: pytest.MonkeyPatch,
              processes: int = 1) -> Iterator[JobRunner]:
    """Every app of this test runs its jobs on job processes started with ``setup``."""
    runner = JobRunner(processes, None, setup)
    monkeypatch.setattr(processing, "runner_for", lambda settings: runner)
    try:
        yield runner
    finally:
        runner.close()


__all__ = ["Settings", "broken_encoders", "crashing_encoders", "jobs_with", "slow_png_encoder"]
