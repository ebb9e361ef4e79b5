"""POST /api/batch and FluxImage requests to /api/compress, anonymous (self-hosted mode)."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feather_server import create_app
from feather_server.settings import Settings
from tests.helpers import assert_image_similar, close, open_image, pixel
from tests.images import encode, photo


def files(*items: tuple[bytes, str]) -> list[tuple[io.BytesIO, str]]:
    return [(io.BytesIO(data), name) for data, name in items]


def post_batch(client: FlaskClient, parts: list[tuple[io.BytesIO, str]],
               path: str = "/api/batch", **fields: Any) -> TestResponse:
    return client.post(path, data={"file": parts, **fields},
                       content_type="multipart/form-data")


def fetch(client: FlaskClient, url: str) -> TestResponse:
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https"), url
    assert parts.netloc, url
    return client.get(f"{parts.path}?{parts.query}")


JPEG = encode(photo(320, 240), "JPEG", quality=95)


def test_batch_returns_signed_downloads_in_the_default_webp(client: FlaskClient) -> None:
    response = post_batch(client, files((JPEG, "one.jpg"), (JPEG, "two.jpg")))
    assert response.status_code == 200
    body = response.get_json()
    assert "errors" not in body
    assert [d["originalName"] for d in body["data"]] == ["one.jpg", "two.jpg"]
    for item in body["data"]:
        assert item["newName"] == item["originalName"].replace(".jpg", ".webp")
        assert item["originalSize"] == len(JPEG)
        download = fetch(client, item["downloadUrl"])
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "image/webp"
        assert f'filename="{item["newName"]}"' in download.headers["Content-Disposition"]
        assert len(download.data) == item["optimizedSize"]
        image = open_image(download.data)
        assert image.format == "WEBP"
        assert image.size == (320, 240)
        assert_image_similar(image, open_image(JPEG))


@pytest.mark.parametrize(("fmt", "pillow", "mime"), [
    ("jpg", "JPEG", "image/jpeg"), ("png", "PNG", "image/png"), ("avif", "AVIF", "image/avif"),
])
def test_format_and_max_size_never_enlarging(client: FlaskClient, fmt: str, pillow: str,
                                             mime: str) -> None:
    response = post_batch(client, files((JPEG, "p.jpg")), format=fmt, quality="60",
                          maxWidth="160", maxHeight="1000")
    item = response.get_json()["data"][0]
    assert item["newName"] == f"p.{fmt}"
    download = fetch(client, item["downloadUrl"])
    assert download.headers["Content-Type"] == mime
    image = open_image(download.data)
    assert (image.format, image.size) == (pillow, (160, 120))
    bigger = post_batch(client, files((JPEG, "p.jpg")), format=fmt, maxWidth="5000")
    image = open_image(fetch(client, bigger.get_json()["data"][0]["downloadUrl"]).data)
    assert image.size == (320, 240)


def test_compress_endpoint_answers_flux_requests_as_json(client: FlaskClient) -> None:
    several = post_batch(client, files((JPEG, "a.jpg"), (JPEG, "b.jpg")), path="/api/compress")
    assert several.status_code == 200
    assert len(several.get_json()["data"]) == 2
    with_format = post_batch(client, files((JPEG, "a.jpg")), path="/api/compress",
                             format="png")
    assert with_format.get_json()["data"][0]["newName"] == "a.png"


def test_one_bad_file_does_not_sink_the_batch(client: FlaskClient) -> None:
    response = post_batch(client, files((JPEG, "good.jpg"), (b"not an image at all", "bad.jpg"),
                                        (b"GIF89a" + b"\0" * 5, "short.gif")))
    assert response.status_code == 200
    body = response.get_json()
    assert [d["originalName"] for d in body["data"]] == ["good.jpg"]
    assert {e["name"] for e in body["errors"]} == {"bad.jpg", "short.gif"}
    assert all(e["code"] in ("INVALID_IMAGE", "UNSUPPORTED_FORMAT") for e in body["errors"])


def test_all_bad_files_give_the_error_status(client: FlaskClient) -> None:
    response = post_batch(client, files((b"garbage bytes here", "x.jpg")))
    assert response.status_code in (415, 422)
    body = response.get_json()
    assert body["error"] in ("INVALID_IMAGE", "UNSUPPORTED_FORMAT")
    assert body["errors"][0]["name"] == "x.jpg"


def test_more_than_20_files(client: FlaskClient) -> None:
    response = post_batch(client, files(*[(b"x", f"{i}.jpg") for i in range(21)]))
    assert response.status_code == 400
    assert response.get_json()["error"] == "Maximum 20 images allowed per batch"


def test_file_over_20mb(client: FlaskClient) -> None:
    response = post_batch(client, files((JPEG, "ok.jpg"), (b"\xff" * 20_000_001, "huge.jpg")))
    assert response.status_code == 400
    assert response.get_json()["error"] == "File huge.jpg exceeds the 20MB limit"


def test_bad_fields_use_the_flux_envelope(client: FlaskClient) -> None:
    response = post_batch(client, files((JPEG, "a.jpg")), quality="20")
    assert response.status_code == 400
    body = response.get_json()
    assert isinstance(body["error"], str)
    assert body["message"]
    missing = client.post("/api/batch", data={"format": "webp"})
    assert missing.status_code == 400
    assert isinstance(missing.get_json()["error"], str)


def _watermark() -> bytes:
    from PIL import Image

    mark = Image.new("RGBA", (100, 50), (255, 0, 0, 255))
    return encode(mark, "PNG")


def test_watermark_is_applied_bottom_right(client: FlaskClient) -> None:
    from PIL import Image

    base = encode(Image.new("RGB", (400, 300), (255, 255, 255)), "PNG")
    response = client.post("/api/batch", data={
        "file": (io.BytesIO(base), "white.png"), "format": "png",
        "watermarkFile": (io.BytesIO(_watermark()), "mark.png"),
        "watermarkScale": "25", "watermarkOpacity": "100", "watermarkPosition": "BR",
    }, content_type="multipart/form-data")
    image = open_image(fetch(client, response.get_json()["data"][0]["downloadUrl"]).data)
    # 25 % of 400 = 100 px wide, margin 3 % of 300 = 9 px from the right and bottom edges.
    assert close(pixel(image, 400 - 9 - 50, 300 - 9 - 25), (255, 0, 0))
    assert close(pixel(image, 20, 20), (255, 255, 255))
    assert close(pixel(image, 400 - 3, 300 - 3), (255, 255, 255))


def test_tampered_link_is_403_and_expired_is_410(client: FlaskClient, app: Flask) -> None:
    item = post_batch(client, files((JPEG, "a.jpg"))).get_json()["data"][0]
    url = item["downloadUrl"]
    tampered = fetch(client, url[:-4] + ("0000" if not url.endswith("0000") else "1111"))
    assert tampered.status_code == 403
    assert tampered.get_json()["error"] == "FORBIDDEN"
    other_object = fetch(client, url.replace("/downloads/", "/downloads/0"))
    assert other_object.status_code == 403
    path = urlsplit(url).path
    with app.app_context():
        from feather_server.storage import current_signer

        signed_path = path.removeprefix("/api/")
        query = current_signer().query(signed_path, 1_000)
    expired = client.get(f"{path}?{query}")
    assert expired.status_code == 410
    assert expired.get_json()["error"] == "GONE"


def test_session_zip_holds_every_output_of_the_session(client: FlaskClient) -> None:
    first = post_batch(client, files((JPEG, "a.jpg"), (JPEG, "b.jpg")), sessionId="shoot-1")
    second = post_batch(client, files((JPEG, "a.jpg")), sessionId="shoot-1", format="jpg")
    other = post_batch(client, files((JPEG, "c.jpg")), sessionId="shoot-2")
    assert first.get_json()["sessionId"] == "shoot-1"
    archive = fetch(client, second.get_json()["sessionZipUrl"])
    assert archive.status_code == 200
    assert archive.headers["Content-Type"] == "application/zip"
    assert 'filename="shoot-1.zip"' in archive.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(archive.data)) as zipped:
        assert sorted(zipped.namelist()) == ["a.jpg", "a.webp", "b.webp"]
        assert open_image(zipped.read("a.jpg")).format == "JPEG"
    assert other.status_code == 200
    tampered = fetch(client, second.get_json()["sessionZipUrl"].replace("shoot-1", "shoot-2"))
    assert tampered.status_code == 403


def test_generated_session_ids_differ(client: FlaskClient) -> None:
    one = post_batch(client, files((JPEG, "a.jpg"))).get_json()["sessionId"]
    two = post_batch(client, files((JPEG, "a.jpg"))).get_json()["sessionId"]
    assert one != two


def test_public_url_makes_the_links(tmp_path: Any) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path / "var"), rate_limit_per_minute=0,
                                 public_url="https://img.example.org/")
    client = create_app(settings).test_client()
    url = post_batch(client, files((JPEG, "a.jpg"))).get_json()["data"][0]["downloadUrl"]
    assert url.startswith("https://img.example.org/api/downloads/")
    assert fetch(client, url).status_code == 200


def test_links_survive_a_new_app_on_the_same_data_dir(settings: Settings) -> None:
    url = post_batch(create_app(settings).test_client(),
                     files((JPEG, "a.jpg"))).get_json()["data"][0]["downloadUrl"]
    assert fetch(create_app(settings).test_client(), url).status_code == 200


def test_non_ascii_names(client: FlaskClient) -> None:
    item = post_batch(client, files((JPEG, "café été.jpg"))).get_json()["data"][0]
    assert item["newName"] == "café été.webp"
    download = fetch(client, item["downloadUrl"])
    assert "filename*=UTF-8''caf%C3%A9%20%C3%A9t%C3%A9.webp" in \
        download.headers["Content-Disposition"]
