"""The local store: atomic writes, failed writes leave nothing, expiry sweeping, the secret."""

from __future__ import annotations

import io
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from feather_cli.keys import create_key, sweep_outputs
from feather_server import create_app
from feather_server.settings import Settings
from feather_server.storage import local
from feather_server.storage.base import StoreError
from feather_server.storage.local import LocalStore
from feather_server.storage.signing import load_secret
from tests.images import encode, photo

JPEG = encode(photo(64, 48), "JPEG")


def test_put_get_list_and_sweep(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "outputs")
    now = int(time.time())
    old = store.put("abc123", b"old", "old.webp", "image/webp", now - 10)
    new = store.put("abc123", b"new", "new.webp", "image/webp", now + 100)
    assert store.get("abc123", new.object_id) == (new, b"new")
    assert [o.name for o in store.list("abc123")] == ["old.webp", "new.webp"]
    assert store.sweep() == 1
    assert store.get("abc123", old.object_id) is None
    assert [o.name for o in store.list("abc123")] == ["new.webp"]
    assert store.sweep(now=now + 101) == 1
    assert not (tmp_path / "outputs" / "abc123").exists()


def test_a_sweep_racing_a_write_costs_nothing(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Another worker's sweep removes the scope's folder, still empty, right after this
    # write made it: the write makes it again and the output is stored.
    store = LocalStore(tmp_path / "outputs")
    made = local.private_folder
    swept = []

    def made_then_swept(path: Path) -> Path:
        made(path)
        if not swept:
            assert store.sweep() == 0
            swept.append(path)
        return path

    monkeypatch.setattr(local, "private_folder", made_then_swept)
    stored = store.put("scope", b"bytes", "a.webp", "image/webp", int(time.time()) + 60)
    assert swept == [tmp_path / "outputs" / "scope"]
    assert store.get("scope", stored.object_id) == (stored, b"bytes")


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "outputs")
    store.put("scope", b"first", "a.webp", "image/webp", int(time.time()) + 60)
    real_replace = os.replace

    def failing_replace(src: str, dst: object) -> None:
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreError):
        store.put("scope", b"second", "b.webp", "image/webp", int(time.time()) + 60)
    left = sorted(p.name for p in (tmp_path / "outputs" / "scope").iterdir())
    assert len(left) == 2
    assert not any(name.startswith(".tmp-") for name in left)
    assert [o.name for o in store.list("scope")] == ["a.webp"]


def test_a_store_that_cannot_write_charges_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "outputs").write_text("a file where the folder should be")
    settings = Settings.from_env({}, data_dir=str(data_dir), rate_limit_per_minute=0)
    _, raw = create_key(settings, "free")
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {raw}"}
    response = client.post("/api/batch", headers=headers, content_type="multipart/form-data",
                           data={"file": [(io.BytesIO(JPEG), "a.jpg"),
                                          (io.BytesIO(JPEG), "b.jpg")]})
    assert response.status_code == 503
    assert [e["code"] for e in response.get_json()["errors"]] == ["SERVICE_UNAVAILABLE"] * 2
    assert client.get("/api/usage", headers=headers).get_json()["compressor_used"] == 0


def test_sweep_command(settings: Settings) -> None:
    store = LocalStore(Path(settings.data_dir) / "outputs")
    store.put("s1", b"x", "x.png", "image/png", int(time.time()) - 1)
    store.put("s1", b"y", "y.png", "image/png", int(time.time()) + 60)
    runner = create_app(settings).test_cli_runner()
    result = runner.invoke(args=["sweep"])
    assert result.exit_code == 0
    assert "1 expired output(s) deleted" in result.output
    assert sweep_outputs(settings) == 0


def _secret(data_dir: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(load_secret(Settings.from_env({}, data_dir=data_dir)))


def test_generated_secret_is_shared_by_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_secret, args=(str(tmp_path), queue))
                 for _ in range(3)]
    for process in processes:
        process.start()
    secrets = {queue.get(timeout=60) for _ in processes}
    for process in processes:
        process.join(timeout=60)
    assert len(secrets) == 1
    assert len(secrets.pop()) == 64
    assert load_secret(Settings.from_env({}, data_dir=str(tmp_path), secret_key="abc")) == b"abc"
