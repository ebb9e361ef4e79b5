"""The S3 store against a real S3-compatible server that checks signatures."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from feather_server import create_app
from feather_server.settings import Settings
from feather_server.storage.s3 import S3Store
from tests.helpers import open_image
from tests.images import encode, photo
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedS3

JPEG = encode(photo(200, 150), "JPEG")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_settings(s3: SeaweedS3, tmp_path: Path) -> Settings:
    bucket = f"feather-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=bucket)
    return Settings.from_env({}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0,
                             s3_bucket=bucket, s3_endpoint_url=s3.endpoint,
                             s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY)


def test_batch_downloads_come_from_presigned_s3_urls(s3_settings: Settings,
                                                     s3: SeaweedS3) -> None:
    client = create_app(s3_settings).test_client()
    response = client.post("/api/batch", data={
        "file": [(io.BytesIO(JPEG), "a.jpg"), (io.BytesIO(JPEG), "b.jpg")], "format": "avif",
        "sessionId": "s3-session"}, content_type="multipart/form-data")
    assert response.status_code == 200
    body = response.get_json()
    for item in body["data"]:
        url = item["downloadUrl"]
        assert url.startswith(s3.endpoint)
        assert "X-Amz-Signature" in url
        download = requests.get(url, timeout=30)
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "image/avif"
        assert item["newName"] in download.headers["Content-Disposition"]
        assert open_image(download.content).format == "AVIF"
        tampered = requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"),
                                timeout=30)
        assert tampered.status_code == 403
    zipped = urlsplit(body["sessionZipUrl"])
    archive = client.get(f"{zipped.path}?{zipped.query}")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.data)) as names:
        assert sorted(names.namelist()) == ["a.avif", "b.avif"]


def test_presigned_urls_expire_and_sweeping_deletes(s3_settings: Settings) -> None:
    store = S3Store.from_settings(s3_settings)
    short = store.put("scope1", b"x" * 10, "x.webp", "image/webp", int(time.time()) + 2)
    url = store.download_url(short, "")
    assert requests.get(url, timeout=30).status_code == 200
    kept = store.put("scope1", b"y" * 10, "y.webp", "image/webp", int(time.time()) + 3600)
    time.sleep(3.5)
    assert requests.get(url, timeout=30).status_code == 403
    assert store.sweep() == 1
    assert [o.object_id for o in store.list("scope1")] == [kept.object_id]
    assert store.read(kept) == b"y" * 10


def test_unreachable_bucket_charges_nothing_and_stores_nothing(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0,
                                 s3_bucket="nope", s3_endpoint_url="http://127.0.0.1:9",
                                 s3_access_key_id="a", s3_secret_access_key="b")
    client = create_app(settings).test_client()
    response = client.post("/api/batch", data={"file": (io.BytesIO(JPEG), "a.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 503
    assert response.get_json()["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
