"""Uploads are parsed into memory, and the allocator tuning applies on this platform."""

from __future__ import annotations

import tempfile

import pytest
from flask.testing import FlaskClient

from feather_core.allocator import keep_freed_memory
from tests.api import post_image
from tests.helpers import open_image
from tests.images import encode, photo


def test_large_uploads_never_touch_the_disk(client: FlaskClient,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(photo(1400, 1000, seed=2), "PNG")
    assert len(data) > 1_000_000  # well past Werkzeug's 500 KB spooling threshold

    def no_temp_files(*args: object, **kwargs: object) -> None:
        raise AssertionError("an upload was spooled to a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_temp_files)
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", no_temp_files)
    r = post_image(client, data, "big.png", outputFormat="webp")
    assert r.status_code == 200
    assert open_image(r.data).size == (1400, 1000)


def test_allocator_tuning_applies_on_glibc() -> None:
    assert keep_freed_memory() is True
