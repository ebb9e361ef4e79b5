"""Files Feather writes in DATA_DIR: atomic, checked when read, rebuilt or refused, private.

Against a real gunicorn where start-up is what is tested (its on_starting check).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from feather_cli.keys import create_key
from feather_server import create_app
from feather_server.accounts import database
from feather_server.datadir import check_data_dir, write_atomically
from feather_server.settings import Settings
from feather_server.storage.local import LocalStore
from feather_server.storage.signing import load_secret
from tests.filesystems import fill, small_tmpfs
from tests.images import encode, photo
from tests.server import ROOT, GunicornServer, free_port

JPEG = encode(photo(64, 48), "JPEG")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def batch_and_downloads(url: str) -> None:
    """A batch, its download and its zip all work."""
    response = requests.post(url + "/api/batch", files={"file": ("a.jpg", JPEG, "image/jpeg")},
                             timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert requests.get(body["data"][0]["downloadUrl"], timeout=30).status_code == 200
    assert requests.get(body["sessionZipUrl"], timeout=30).status_code == 200


@pytest.mark.parametrize("content", [b"", b"\n", b"3f9a", b"z" * 64])
def test_a_damaged_secret_key_is_rebuilt_at_start(tmp_path: Path, content: bytes) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "secret_key").write_bytes(content)  # what a full disk or kill -9 left
    env = {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0"}
    with GunicornServer(env, workers=2) as server:
        batch_and_downloads(server.url)
        log = server.log()
    key = (data_dir / "secret_key").read_bytes()
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert mode(data_dir / "secret_key") == 0o600
    assert "secret_key was damaged" in log


def test_a_secret_key_damaged_while_running_is_rebuilt_not_500(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_bytes(b"")
    client = create_app(settings).test_client()
    response = client.post("/api/batch", data={"file": (io.BytesIO(JPEG), "a.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    url = urlsplit(response.get_json()["data"][0]["downloadUrl"])
    assert client.get(f"{url.path}?{url.query}").status_code == 200


def _load(data_dir: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(load_secret(Settings.from_env({}, data_dir=data_dir)))


def test_workers_repairing_at_once_agree_on_one_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "secret_key").write_bytes(b"")
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [multiprocessing.Process(target=_load, args=(str(data_dir), queue))
               for _ in range(6)]
    for worker in workers:
        worker.start()
    keys = {queue.get(timeout=60) for _ in workers}
    for worker in workers:
        worker.join(timeout=60)
    assert len(keys) == 1
    assert (data_dir / "secret_key").read_bytes() == keys.pop()


def _killed_mid_write(path: str) -> None:
    # The writer dies the moment its data is on disk, before the rename: kill -9 at
    # the worst time.
    def die(_fd: int) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    os.fsync = die  # type: ignore[assignment]
    write_atomically(Path(path), b"new content that never lands")


def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    process = multiprocessing.get_context("fork").Process(target=_killed_mid_write,
                                                          args=(str(target),))
    process.start()
    process.join(timeout=30)
    assert process.exitcode == -signal.SIGKILL
    assert target.read_bytes() == b"old"


def test_files_holding_keys_and_accounts_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    old_umask = os.umask(0o022)
    try:
        settings = Settings.from_env({}, data_dir=str(data_dir))
        create_key(settings, "pro")
        database.forget(settings)
        env = {"DATA_DIR": str(data_dir)}  # rate limiting on: its counters file too
        with GunicornServer(env, workers=1) as server:
            batch_and_downloads(server.url)
            requests.post(server.url + "/api/compress",
                          files={"file": ("a.jpg", JPEG, "image/jpeg")}, timeout=30)
    finally:
        os.umask(old_umask)
    assert mode(data_dir) == 0o700
    for name in ("secret_key", "feather.db", "ratelimit.sqlite3"):
        assert mode(data_dir / name) == 0o600, name
    for extra in data_dir.glob("*.sqlite3-*"):
        assert mode(extra) == 0o600, extra.name
    assert mode(data_dir / "outputs") == 0o700


def test_an_old_world_readable_install_is_tightened_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    settings = Settings.from_env({}, data_dir=str(data_dir))
    create_key(settings, "free")
    database.forget(settings)
    load_secret(settings)
    data_dir.chmod(0o755)
    (data_dir / "feather.db").chmod(0o644)
    (data_dir / "secret_key").chmod(0o644)
    check_data_dir(settings)
    assert mode(data_dir) == 0o750
    assert mode(data_dir / "feather.db") == 0o600
    assert mode(data_dir / "secret_key") == 0o600


def start_failure(data_dir: Path, **extra: str) -> tuple[int, str]:
    """Run gunicorn's start-up; (exit status, output) when it refuses to start."""
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(port), "HOST": "127.0.0.1",
           "WEB_CONCURRENCY": "1", **extra}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    done = subprocess.run([str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr


def test_a_damaged_accounts_database_stops_start_up_with_what_to_do(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    settings = Settings.from_env({}, data_dir=str(data_dir))
    create_key(settings, "free")
    database.forget(settings)
    db = data_dir / "feather.db"
    raw = bytearray(db.read_bytes())
    raw[100:4096] = b"\xff" * (4096 - 100)  # the header's tail and the first page
    db.write_bytes(bytes(raw))
    status, output = start_failure(data_dir)
    assert status == 1
    assert str(db) in output
    assert "damaged" in output
    assert "restore the file from a backup" in output


def test_damaged_rate_limit_counters_are_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "ratelimit.sqlite3").write_bytes(b"garbage" * 1000)
    env = {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "5"}
    with GunicornServer(env, workers=1) as server:
        response = requests.post(server.url + "/api/compress",
                                 files={"file": ("a.jpg", JPEG, "image/jpeg")}, timeout=30)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Remaining"] == "4"  # counting again
    assert list(data_dir.glob("ratelimit.sqlite3.damaged-*"))


@pytest.fixture
def full_data_dir(tmp_path: Path) -> object:
    with small_tmpfs(tmp_path / "var", "64k") as folder:
        yield folder


def test_a_full_disk_with_an_empty_secret_refuses_to_start_and_answers_503(
        full_data_dir: Path) -> None:
    (full_data_dir / "secret_key").write_bytes(b"")
    fill(full_data_dir)
    status, output = start_failure(full_data_dir)
    assert status == 1
    assert f"{full_data_dir / 'secret_key'} cannot be written" in output
    assert "free space" in output
    assert "SECRET_KEY" in output
    # A worker that meets it at run time answers 503, not 500.
    settings = Settings.from_env({}, data_dir=str(full_data_dir), rate_limit_per_minute=0)
    client = create_app(settings).test_client()
    response = client.post("/api/batch", data={"file": (io.BytesIO(JPEG), "a.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 503
    assert response.get_json()["error"] == "SERVICE_UNAVAILABLE"


def test_stored_outputs_are_checked_when_read(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "outputs")
    later = int(time.time()) + 60
    cut = store.put("s1", b"0123456789", "a.webp", "image/webp", later)
    bad_record = store.put("s1", b"abc", "b.webp", "image/webp", later)
    good = store.put("s1", b"xyz", "c.webp", "image/webp", later)
    (tmp_path / "outputs" / "s1" / f"{cut.object_id}.bin").write_bytes(b"01234")
    (tmp_path / "outputs" / "s1" / f"{bad_record.object_id}.json").write_text(
        json.dumps({"name": "b.webp", "mime": "image/webp", "size": "3", "expires": later}))
    assert store.get("s1", cut.object_id) is None
    assert store.get("s1", bad_record.object_id) is None
    assert store.get("s1", good.object_id) == (good, b"xyz")
    assert [o.name for o in store.list("s1")] == ["a.webp", "c.webp"]
    assert store.read(cut) is None  # the zip skips it


def test_a_damaged_sweep_stamp_means_a_sweep_is_due(tmp_path: Path) -> None:
    from feather_server.storage.sweeping import _due, sweep_now

    settings = Settings.from_env({}, data_dir=str(tmp_path / "var"))
    store = LocalStore(tmp_path / "var" / "outputs")
    store.put("s1", b"x", "x.png", "image/png", int(time.time()) - 1)
    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var" / ".last-sweep").write_bytes(b"\0\0")
    assert _due(settings)
    assert sweep_now(store, settings) == 1
    assert not _due(settings)
    assert mode(tmp_path / "var" / ".last-sweep") == 0o600
