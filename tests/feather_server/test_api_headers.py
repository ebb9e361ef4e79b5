"""Every response header of the Feather document, with its documented meaning."""

from __future__ import annotations

from urllib.parse import unquote

from flask.testing import FlaskClient

from tests.api import post_image
from tests.helpers import open_image
from tests.images import encode, photo


def test_result_headers(client: FlaskClient) -> None:
    data = encode(photo(900, 600), "JPEG", quality=95)
    r = post_image(client, data, "holiday.jpg", outputFormat="webp", maxWidth=450)
    h = r.headers
    assert h["Content-Type"] == "image/webp"
    assert h["Content-Disposition"] == 'attachment; filename="holiday-compressed.webp"'
    assert int(h["X-Original-Bytes"]) == len(data)
    assert int(h["X-Output-Bytes"]) == len(r.data)
    assert h["X-Output-Quality"] == "80"
    assert (h["X-Output-Width"], h["X-Output-Height"]) == ("450", "300")
    assert open_image(r.data).size == (450, 300)
    ratio = h["X-Compression-Ratio"]
    assert ratio == f"{len(data) / len(r.data):.2f}"
    assert len(ratio.split(".")[1]) == 2
    assert int(h["X-Processing-Time-Ms"]) >= 0
    assert h["X-Target-Met"] == "true"
    assert h["X-Resized"] == "true"
    assert h["X-Iterations"] == "1"


def test_target_headers(client: FlaskClient) -> None:
    data = encode(photo(1200, 900, seed=3), "PNG")
    r = post_image(client, data, "big.png", outputFormat="jpeg", targetMB="0.05")
    assert r.status_code == 200
    assert len(r.data) <= 50_000
    assert r.headers["X-Target-Met"] == "true"
    assert int(r.headers["X-Iterations"]) >= 1
    assert int(r.headers["X-Output-Quality"]) <= 80


def test_non_ascii_names_get_rfc6266_filename_star(client: FlaskClient) -> None:
    data = encode(photo(60, 40), "JPEG")
    r = post_image(client, data, "café 東京.jpg")
    header = r.headers["Content-Disposition"]
    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="')[1].split('"')[0]
    assert fallback.isascii()
    assert fallback.endswith("-compressed.webp")
    assert "filename*=UTF-8''" in header
    assert unquote(header.split("filename*=UTF-8''")[1]) == "café 東京-compressed.webp"


def test_hostile_names_are_made_safe(client: FlaskClient) -> None:
    data = encode(photo(60, 40), "JPEG")
    for name in ['../../etc/passwd.jpg', 'a"b\r\nX-Evil: 1.jpg', "x" * 300 + ".jpg"]:
        r = post_image(client, data, name)
        assert r.status_code == 200
        header = r.headers["Content-Disposition"]
        assert "\r" not in header
        assert "\n" not in header
        assert "/" not in header.split(";")[1]
        assert "X-Evil" not in r.headers
        assert header.count('"') == 2 or "filename*" in header
        assert len(header) < 700
