"""The download store on a full filesystem: a JSON answer, no partial file, no charge.

The test mounts a small tmpfs as the output folder of a real gunicorn (2 workers),
so the writes fail with the kernel's own ENOSPC part-way through a batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from feather_cli.keys import create_key
from feather_server.settings import Settings
from tests.filesystems import small_tmpfs
from tests.helpers import open_image
from tests.images import encode, photo
from tests.server import GunicornServer


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "var" / "outputs", "600k") as outputs:
        yield outputs


def test_full_disk_fails_only_what_did_not_fit(small_disk: Path) -> None:
    data_dir = small_disk.parent
    settings = Settings.from_env({}, data_dir=str(data_dir))
    _, key = create_key(settings, "pro")
    # Noisy photos at quality 98 come back as they are (~220 KB): two fit in 600 KB, five do not.
    files = [("file", (f"p{i}.jpg", encode(photo(700, 500, seed=i), "JPEG", quality=98),
                       "image/jpeg")) for i in range(5)]
    env = {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0"}
    server = GunicornServer(env, workers=2).start(data_dir.parent)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        r = requests.post(server.url + "/api/batch", headers=headers, files=files,
                          data={"format": "jpg", "quality": "100"}, timeout=120)
        assert r.headers["Content-Type"].startswith("application/json")
        body = r.json()
        stored, failed = body.get("data", []), body.get("errors", [])
        assert len(stored) + len(failed) == 5
        assert stored, "the first outputs fit"
        assert failed, "the tmpfs should have filled up"
        assert {e["code"] for e in failed} == {"SERVICE_UNAVAILABLE"}
        assert r.status_code in (200, 503)
        for item in stored:
            image = open_image(requests.get(item["downloadUrl"], timeout=30).content)
            assert image.format == "JPEG"
            assert image.size == (700, 500)
        usage = requests.get(server.url + "/api/usage", headers=headers, timeout=30).json()
        assert usage["compressor_used"] == len(stored)
        leftovers = [p.name for p in small_disk.rglob("*") if p.name.startswith(".tmp-")]
        assert leftovers == []
        records = list(small_disk.rglob("*.json"))
        assert len(records) == len(stored)
        # The worker lives on and still answers.
        assert requests.get(server.url + "/api/health", timeout=10).json()["ok"] is True
    finally:
        server.stop()
    assert os.path.ismount(small_disk)
