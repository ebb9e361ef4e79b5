"""The S3 store in a shared bucket and against a bucket that hangs.

Against a real S3-compatible server (SeaweedFS): Feather lists and deletes only its own
keys under S3_PREFIX, lets the bucket's lifecycle rule expire them when allowed, signs
links for S3_PUBLIC_URL; and a server that accepts connections and never answers
costs a request a bounded time and a 503 in JSON.
"""

from __future__ import annotations

import io
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from feather_server import create_app
from feather_server.settings import Settings
from feather_server.storage.base import StoreError
from feather_server.storage.s3 import LIFECYCLE_RULE_ID, S3Store
from feather_server.storage.sweeping import sweep_now
from tests.helpers import open_image
from tests.images import encode, photo
from tests.s3server import (
    ACCESS_KEY,
    LIMITED_ACCESS_KEY,
    LIMITED_SECRET_KEY,
    SECRET_KEY,
    SeaweedS3,
)
from tests.server import GunicornServer

JPEG = encode(photo(120, 90), "JPEG")
HEX = "0123456789abcdef" * 2
PAST = int(time.time()) - 3600

# Keys Feather never wrote: at the root, under look-alike prefixes, and inside its own
# prefix but not of its shape. Several parse as Feather keys once the prefix is
# dropped, so only the prefix and the exact shape protect them.
FOREIGN = [
    "README",
    "backups/important.txt",
    f"abc/{PAST}-{HEX}",  # an output of a Feather without a prefix, or anything alike
    f"feather/outputs-old/abc/{PAST}-{HEX}",
    f"feather/output/abc/{PAST}-{HEX}",
    f"feather/outputsabc/{PAST}-{HEX}",
    f"feather/abc/{PAST}-{HEX}",
    "feather/outputs/notes.txt",
    "feather/outputs/abc/readme",
    f"feather/outputs/abc/{PAST}-short",
    f"feather/outputs/abc/{PAST}-{HEX}.bak",
    f"feather/outputs/abc/sub/{PAST}-{HEX}",
    f"feather/outputs/a.b/{PAST}-{HEX}",
    f"feather/outputs/abc/{PAST}\u00b2-{HEX}",
]


def s3_client(endpoint: str, access: str = ACCESS_KEY, secret: str = SECRET_KEY) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=access, aws_secret_access_key=secret,
                        config=Config(signature_version="s3v4",
                                      s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3: SeaweedS3) -> str:
    name = f"feather-{uuid.uuid4().hex[:8]}"
    s3_client(s3.endpoint).create_bucket(Bucket=name)
    return name


def s3_env(s3: SeaweedS3, bucket: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {"DATA_DIR": str(data_dir), "RATE_LIMIT_PER_MINUTE": "0", "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": s3.endpoint, "S3_ACCESS_KEY_ID": ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": SECRET_KEY, **extra}


def keys(client: Any, bucket: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_a_batch_sweeps_only_feathers_expired_outputs(s3: SeaweedS3, bucket: str,
                                                      tmp_path: Path) -> None:
    admin = s3_client(s3.endpoint)
    for key in FOREIGN:
        admin.put_object(Bucket=bucket, Key=key, Body=b"not Feather's")
    env = s3_env(s3, bucket, tmp_path / "var")
    store = S3Store.from_settings(Settings.from_env(env))
    expired = store.put("abc", b"old", "old.webp", "image/webp", PAST)
    kept = store.put("abc", b"new", "new.webp", "image/webp", int(time.time()) + 3600)
    assert f"feather/outputs/abc/{PAST}-{expired.object_id}" in keys(admin, bucket)

    with GunicornServer(env, workers=1) as server:
        response = requests.post(server.url + "/api/batch",
                                 files={"file": ("a.jpg", JPEG, "image/jpeg")}, timeout=60)
        assert response.status_code == 200, response.text
        download = requests.get(response.json()["data"][0]["downloadUrl"], timeout=30)
        assert download.status_code == 200
        assert open_image(download.content).format == "WEBP"
        # The sweep runs in the background after the batch.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and store._key(expired) in keys(admin, bucket):
            time.sleep(0.2)
        log = server.log()

    left = keys(admin, bucket)
    assert store._key(expired) not in left
    assert set(FOREIGN) <= left, f"deleted: {set(FOREIGN) - left}"
    assert store._key(kept) in left
    assert "swept 1 expired outputs" in log
    # Feather's own new output lives under the prefix.
    assert [k for k in left - set(FOREIGN) if not k.startswith("feather/outputs/")] == []


def test_another_prefix_and_the_bucket_root(s3: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    admin = s3_client(s3.endpoint)
    for key in FOREIGN:
        admin.put_object(Bucket=bucket, Key=key, Body=b"not Feather's")
    env = s3_env(s3, bucket, tmp_path / "var", S3_PREFIX="/tenants/feather")
    settings = Settings.from_env(env)
    assert settings.s3_prefix == "tenants/feather/"
    store = S3Store.from_settings(settings)
    mine = store.put("abc", b"x", "x.png", "image/png", PAST)
    assert store._key(mine).startswith("tenants/feather/abc/")
    assert sweep_now(store, settings) == 1
    assert keys(admin, bucket) == set(FOREIGN)
    # No prefix (a bucket of Feather's own): still only keys of Feather's exact shape.
    root = S3Store.from_settings(Settings.from_env({**env, "S3_PREFIX": "/"}))
    assert root.sweep() == 1  # the old-style root output "abc/<past>-<hex>"
    assert keys(admin, bucket) == set(FOREIGN) - {f"abc/{PAST}-{HEX}"}


def test_lifecycle_rule_installed_beside_the_operators_and_sweeping_stops(
        s3: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    admin = s3_client(s3.endpoint)
    theirs = {"ID": "logs-30d", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
              "Expiration": {"Days": 30}}
    admin.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [theirs]})
    settings = Settings.from_env(s3_env(s3, bucket, tmp_path / "var", S3_LIFECYCLE="true",
                                        DOWNLOAD_TTL_SECONDS="3600"))
    store = S3Store.from_settings(settings)
    assert store.lifecycle_expiry
    rules = {r["ID"]: r for r in admin.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {"logs-30d", LIFECYCLE_RULE_ID}
    assert rules[LIFECYCLE_RULE_ID]["Filter"] == {"Prefix": "feather/outputs/"}
    assert rules[LIFECYCLE_RULE_ID]["Expiration"] == {"Days": 1}
    # The bucket expires outputs now: nothing is swept, nothing deleted by Feather.
    old = store.put("abc", b"x", "x.png", "image/png", PAST)
    assert store.sweep() == 0
    assert store._key(old) in keys(admin, bucket)
    # A second worker finds the rule and changes nothing.
    again = S3Store.from_settings(settings)
    assert again.lifecycle_expiry
    assert len(admin.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]) == 2


def test_lifecycle_refused_falls_back_to_sweeping(s3: SeaweedS3, bucket: str, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    env = s3_env(s3, bucket, tmp_path / "var", S3_LIFECYCLE="true",
                 S3_ACCESS_KEY_ID=LIMITED_ACCESS_KEY, S3_SECRET_ACCESS_KEY=LIMITED_SECRET_KEY)
    store = S3Store.from_settings(Settings.from_env(env))
    assert not store.lifecycle_expiry
    assert "expired outputs are swept instead" in caplog.text
    # So it sweeps: with this key the bucket refuses that too, and says so.
    full = S3Store.from_settings(Settings.from_env(s3_env(s3, bucket, tmp_path / "var")))
    old = full.put("abc", b"x", "x.png", "image/png", PAST)
    with pytest.raises(StoreError, match="could not sweep"):
        store.sweep()
    assert full.sweep() == 1
    assert full.get("abc", old.object_id) is None


def test_links_for_a_public_host_and_what_s3_answers_to_bad_ones(
        s3: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    public = s3.endpoint.replace("127.0.0.1", "localhost")
    env = s3_env(s3, bucket, tmp_path / "var", S3_PUBLIC_URL=public)
    client = create_app(Settings.from_env(env)).test_client()
    response = client.post("/api/batch", data={"file": (io.BytesIO(JPEG), "a.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    url = response.get_json()["data"][0]["downloadUrl"]
    assert url.startswith(public + "/")
    assert requests.get(url, timeout=30).status_code == 200
    # S3 itself answers bad links, in XML: a changed signature, a link for another host.
    tampered = requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=30)
    assert tampered.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in tampered.text
    moved = requests.get(url.replace("localhost", "127.0.0.1"), timeout=30)
    assert moved.status_code == 403
    # An expired link.
    store = S3Store.from_settings(Settings.from_env(env))
    short = store.put("abc", b"x", "x.png", "image/png", int(time.time()) + 1)
    link = store.download_url(short, "")
    time.sleep(2.2)
    expired = requests.get(link, timeout=30)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text
    assert "expired" in expired.text


class SilentServer:
    """Accepts TCP connections and never answers (a hung S3 endpoint)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.held: list[socket.socket] = []
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_a_hanging_bucket_answers_503_in_json_within_the_request_timeout(tmp_path: Path) -> None:
    silent = SilentServer()
    env = {"DATA_DIR": str(tmp_path / "var"), "RATE_LIMIT_PER_MINUTE": "0",
           "S3_BUCKET": "feather-hung", "S3_ENDPOINT_URL": silent.url,
           "S3_ACCESS_KEY_ID": "a", "S3_SECRET_ACCESS_KEY": "b",
           "REQUEST_TIMEOUT_MS": "8000"}
    try:
        with GunicornServer(env, workers=1) as server:
            started = time.monotonic()
            response = requests.post(server.url + "/api/batch",
                                     files={"file": ("a.jpg", JPEG, "image/jpeg")}, timeout=60)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.json()["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
            assert elapsed < 8, f"took {elapsed:.1f} s"
            started = time.monotonic()
            ready = requests.get(server.url + "/api/ready", timeout=30)
            assert ready.status_code == 503
            assert ready.json()["checks"]["store"]["state"] == "down"
            assert time.monotonic() - started < 5
            assert len(silent.held) >= 2, "the server was really reached"
            # The worker lives on.
            assert requests.get(server.url + "/api/health", timeout=5).status_code == 200
    finally:
        silent.close()


def test_a_session_zip_from_an_unreachable_bucket_is_503_in_json(tmp_path: Path) -> None:
    from feather_server.storage.signing import Signer
    from tests.server import free_port

    settings = Settings.from_env(
        {}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0, secret_key="k",
        s3_bucket="feather-gone", s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id="a", s3_secret_access_key="b")
    expires = int(time.time()) + 60
    query = Signer(b"k").query("sessions/s1/abc", expires)
    response = create_app(settings).test_client().get(f"/api/sessions/s1.zip?scope=abc&{query}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {"error": "SERVICE_UNAVAILABLE",
                                   "message": "The output store is unavailable; retry in a "
                                              "few seconds"}
