"""stripMetadata removes EXIF/IPTC/XMP; false keeps them with the orientation reset."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from PIL import Image

from feather_core.metadata import strip_jpeg, strip_png, strip_webp
from tests.api import post_image
from tests.helpers import open_image
from tests.images import encode, photo, with_orientation

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
       b'22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
       b'dc:creator="Ada"/></rdf:RDF></x:xmpmeta>')


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    exif[0x0110] = "Model X"
    return exif.tobytes()


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "avif"])
def test_strip_removes_exif_and_xmp(client: FlaskClient, fmt: str) -> None:
    data = encode(photo(200, 150), "JPEG", exif=_exif(), xmp=XMP)
    out = open_image(post_image(client, data, outputFormat=fmt).data)
    assert not out.getexif()
    assert not out.info.get("xmp")


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "avif"])
def test_keep_carries_exif_and_xmp(client: FlaskClient, fmt: str) -> None:
    data = encode(photo(200, 150), "JPEG", exif=_exif(), xmp=XMP)
    out = open_image(post_image(client, data, outputFormat=fmt, stripMetadata="false").data)
    assert out.getexif().get(0x0110) == "Model X"
    if fmt != "png":
        assert b"Ada" in (out.info.get("xmp") or b"")


def test_keep_resets_orientation(client: FlaskClient) -> None:
    data = with_orientation(photo(200, 100), 6)
    out = open_image(post_image(client, data, stripMetadata="false").data)
    assert out.size == (200, 100)
    assert out.getexif().get(0x0112, 1) == 1


def test_lossless_strippers_keep_pixels() -> None:
    source = photo(120, 90)
    jpeg = encode(source, "JPEG", exif=_exif(), xmp=XMP)
    stripped = strip_jpeg(jpeg)
    assert stripped is not None
    assert len(stripped) < len(jpeg)
    assert open_image(stripped).tobytes() == open_image(jpeg).tobytes()
    assert not open_image(stripped).getexif()

    png = encode(source, "PNG", exif=_exif())
    stripped = strip_png(png)
    assert stripped is not None
    assert not open_image(stripped).getexif()
    assert open_image(stripped).tobytes() == source.tobytes()

    webp = encode(source, "WEBP", exif=_exif(), xmp=XMP, lossless=True)
    stripped = strip_webp(webp)
    assert stripped is not None
    out = open_image(stripped)
    assert not out.getexif()
    assert not out.info.get("xmp")
    assert out.convert("RGB").tobytes() == source.tobytes()


def test_strippers_refuse_what_they_do_not_understand() -> None:
    assert strip_jpeg(b"\xff\xd8\xff\xe1\xff\xff") is None
    assert strip_png(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x10IHDR") is None
    assert strip_webp(b"RIFF\x00\x00\x00\x00WEBPVP8 \xff\xff\xff\xff") is None


def test_metadata_size_is_what_stripping_removes() -> None:
    from feather_core.metadata import jpeg_metadata_bytes

    jpeg = encode(photo(120, 90), "JPEG", exif=_exif(), xmp=XMP)
    stripped = strip_jpeg(jpeg)
    assert stripped is not None
    assert jpeg_metadata_bytes(jpeg) == len(jpeg) - len(stripped) > len(XMP)
    assert jpeg_metadata_bytes(b"not a jpeg") == 0
