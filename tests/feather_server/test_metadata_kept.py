"""stripMetadata=false keeps what a file says about itself, in every format that can hold it.

EXIF (orientation reset), IPTC, XMP, ICC, an animation's loop count and frame timings.
"""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageCms, IptcImagePlugin

from feather_core import CompressOptions, compress
from feather_core.metadata import iptc_from_png_text, png_iptc_text
from tests.api import post_image
from tests.helpers import open_image
from tests.images import encode, photo
from tests.paths import RESOURCES

IPTC_JPEG = RESOURCES / "differential" / "pillow-tests" / "iptc.jpg"
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
       b'22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
       b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6" '
       b'dc:creator="Ada"/></rdf:RDF></x:xmpmeta>')


def _iptc(image: Image.Image) -> dict[tuple[int, int], bytes | list[bytes]]:
    if image.format == "PNG":
        raw = iptc_from_png_text(image.info.get("Raw profile type iptc"))
        assert raw is not None, "no IPTC text chunk"
        jpeg = encode(Image.new("RGB", (4, 4)), "JPEG")
        from feather_core.metadata import insert_jpeg_iptc

        image = Image.open(io.BytesIO(insert_jpeg_iptc(jpeg, raw)))
    info = IptcImagePlugin.getiptcinfo(image)  # type: ignore[arg-type]
    assert info is not None, "no IPTC"
    return info


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_iptc_of_a_real_jpeg_is_kept(client: FlaskClient, fmt: str) -> None:
    data = IPTC_JPEG.read_bytes()
    source = _iptc(Image.open(io.BytesIO(data)))
    r = post_image(client, data, "iptc.jpg", outputFormat=fmt, stripMetadata="false",
                   maxWidth=100)
    assert r.status_code == 200
    kept = _iptc(open_image(r.data))
    assert kept == source
    assert kept[(2, 90)] == b"Budapest"


def test_iptc_is_dropped_when_stripping(client: FlaskClient) -> None:
    r = post_image(client, IPTC_JPEG.read_bytes(), "iptc.jpg", outputFormat="jpeg",
                   maxWidth=100)
    assert IptcImagePlugin.getiptcinfo(open_image(r.data)) is None  # type: ignore[arg-type]


def test_png_iptc_text_round_trips() -> None:
    records = b"\x1c\x02\x5a\x00\x08Budapest" * 7
    keyword, text = png_iptc_text(records)
    assert keyword == "Raw profile type iptc"
    assert iptc_from_png_text(text) == records
    assert iptc_from_png_text("garbage") is None


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_xmp_exif_and_icc_are_kept_with_orientation_reset(client: FlaskClient, fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0110] = "Model X"
    exif[0x0112] = 6
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(photo(120, 80), "JPEG", exif=exif.tobytes(), xmp=XMP, icc_profile=icc)
    r = post_image(client, data, outputFormat=fmt, stripMetadata="false")
    out = open_image(r.data)
    assert out.size == (80, 120)  # turned upright once
    kept = out.getexif()
    assert kept.get(0x0110) == "Model X"
    assert kept.get(0x0112, 1) == 1
    xmp = out.info.get("xmp") or out.info.get("XML:com.adobe.xmp") or b""
    xmp = xmp.encode() if isinstance(xmp, str) else xmp
    assert b'dc:creator="Ada"' in xmp
    assert b'tiff:Orientation="1"' in xmp
    assert out.info.get("icc_profile") == icc


def test_tiff_exif_keeps_what_describes_the_picture_not_its_strips() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "Scanner Co"
    exif[0x0131] = "ScanApp 2"
    photo(64, 32).save(buffer, "TIFF", exif=exif)
    r = compress(buffer.getvalue(), CompressOptions(output_format="jpeg", strip_metadata=False))
    kept = Image.open(io.BytesIO(r.data)).getexif()
    assert kept.get(0x010F) == "Scanner Co"
    assert kept.get(0x0131) == "ScanApp 2"
    for structural in (0x0111, 0x0117, 0x0102, 0x0103, 0x0106):  # strips, bits, compression
        assert structural not in kept


def _gif(loop: int | None, durations: list[int]) -> bytes:
    frames = [Image.new("RGB", (24, 16), c) for c in ("red", "lime", "blue")]
    buffer = io.BytesIO()
    extra = {} if loop is None else {"loop": loop}
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:],
                   duration=durations, **extra)
    return buffer.getvalue()


def _webp_timing(data: bytes) -> tuple[int, list[int]]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "WEBP"
    durations = []
    for index in range(image.n_frames):
        image.seek(index)
        image.load()
        durations.append(image.info["duration"])
    return image.info["loop"], durations


@pytest.mark.parametrize(("gif_loop", "webp_loop"), [(None, 1), (0, 0), (2, 3)])
def test_gif_loop_count_survives_as_webp(client: FlaskClient, gif_loop: int | None,
                                         webp_loop: int) -> None:
    # A GIF without a NETSCAPE block plays once; one whose block says N plays N + 1
    # times in browsers. WebP counts plays, 0 being forever.
    durations = [40, 120, 300]
    r = post_image(client, _gif(gif_loop, durations), "anim.gif", outputFormat="webp")
    assert r.status_code == 200
    loop, kept = _webp_timing(r.data)
    assert loop == webp_loop
    assert kept == durations


def test_apng_plays_count_survives_as_webp(client: FlaskClient) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=[70, 90],
                   loop=2)
    r = post_image(client, buffer.getvalue(), "anim.png", outputFormat="webp")
    assert _webp_timing(r.data) == (2, [70, 90])
