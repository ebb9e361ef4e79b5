"""Valid images that used to come out wrong or refused, and bad ones that used to 500.

One test per class: AVIF with alpha (associations split over two ``ipma`` boxes), AVIF
whose ``ispe`` lies about the coded size, oriented TIFF, 16-bit and ICC Lab TIFF, decoder
exceptions of any type, and output formats too small for the asked size.
"""

from __future__ import annotations

import io
import struct

import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageCms

from feather_core import CompressOptions, compress
from feather_core.compress import resolve_output
from feather_core.decode import Source, open_source
from feather_core.errors import InvalidImage, OutputTooLarge
from feather_core.formats import FORMATS, can_hold
from feather_core.isobmff import av1_size_mismatches, ispe_sizes, merge_property_associations
from feather_core.options import Limits
from tests.api import post_image
from tests.faults import jobs_with, png_loader_raising_type_error
from tests.helpers import assert_image_similar, close, open_image, pixel
from tests.images import encode, marked, photo
from tests.paths import RESOURCES

DIFFERENTIAL = RESOURCES / "differential"
ALPHA_AVIF = (DIFFERENTIAL / "avif-samples"
              / "plum-blossom-small.profile0.8bpc.yuv420.alpha-full.avif")
RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    out, pos = [], start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        out.append((data[pos + 4 : pos + 8], pos, pos + size))
        pos += size
    return out


def _split_ipma(data: bytes) -> bytes:
    """An AVIF whose one ``ipma`` box (two items) is rewritten as two boxes of one item each.

    That is how older encoders wrote every image with alpha, and libavif refuses it.
    The boxes grow by one header, so meta, iprp and every iloc offset are moved too.
    """
    meta = next(b for b in _boxes(data, 0, len(data)) if b[0] == b"meta")
    children = _boxes(data, meta[1] + 12, meta[2])
    iprp = next(b for b in children if b[0] == b"iprp")
    ipma = next(b for b in _boxes(data, iprp[1] + 8, iprp[2]) if b[0] == b"ipma")
    body = data[ipma[1] + 8 : ipma[2]]
    assert (body[0], int.from_bytes(body[4:8], "big")) == (0, 2), "expected two items"
    first_len = 3 + body[10]
    entries = body[8:], first_len
    first, second = entries[0][: entries[1]], entries[0][entries[1] :]
    boxes = b""
    for entry in (first, second):
        payload = body[:4] + struct.pack(">I", 1) + entry
        boxes += struct.pack(">I", 8 + len(payload)) + b"ipma" + payload
    grow = len(boxes) - (ipma[2] - ipma[1])
    out = bytearray(data[: ipma[1]] + boxes + data[ipma[2] :])
    for start in (meta[1], iprp[1]):
        out[start : start + 4] = struct.pack(">I", int.from_bytes(out[start : start + 4], "big")
                                             + grow)
    iloc = next(b for b in children if b[0] == b"iloc")
    # Pillow's encoder writes iloc version 0 with 4-byte offsets and lengths, no base.
    assert out[iloc[1] + 8] == 0
    assert out[iloc[1] + 12] == 0x44
    pos = iloc[1] + 14
    items = int.from_bytes(out[pos : pos + 2], "big")
    pos += 2
    for _ in range(items):
        extents = int.from_bytes(out[pos + 4 : pos + 6], "big")
        pos += 6
        for _ in range(extents):
            offset = int.from_bytes(out[pos : pos + 4], "big")
            out[pos : pos + 4] = struct.pack(">I", offset + grow)
            pos += 8
    return bytes(out)


def test_real_alpha_avif_with_split_associations_decodes(client: FlaskClient) -> None:
    data = ALPHA_AVIF.read_bytes()
    r = post_image(client, data, "plum.avif", outputFormat="png")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = open_image(r.data)
    assert out.size == (128, 128)
    assert "transparency" in out.info or out.mode == "RGBA"
    out = out.convert("RGBA")
    assert out.getchannel("A").getextrema() == (0, 255)


def test_generated_alpha_avif_with_split_associations_keeps_its_look() -> None:
    source = photo(96, 64, mode="RGBA")
    split = _split_ipma(encode(source, "AVIF", quality=95))
    with pytest.raises(Exception):  # noqa: B017, PT011 - libavif's own refusal, whatever it is
        Image.open(io.BytesIO(split)).load()
    merged = merge_property_associations(split)
    assert len(merged) == len(split)
    out = open_image(compress(split, CompressOptions(output_format="png")).data)
    assert out.mode == "RGBA"
    assert out.size == (96, 64)
    assert_image_similar(out.convert("RGBA"), source, 6)
    assert abs(pixel(out, 90, 32)[3] - pixel(source, 90, 32)[3]) <= 8


def test_avif_whose_ispe_lies_about_the_coded_size_is_refused(client: FlaskClient) -> None:
    data = bytearray(encode(photo(64, 48), "AVIF"))
    at = data.find(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", 640, 480)
    assert ispe_sizes(bytes(data)) == [(640, 480)]
    assert [(m.declared, m.coded) for m in av1_size_mismatches(bytes(data))] == [
        ((640, 480), (64, 48))]
    r = post_image(client, bytes(data), "lie.avif")
    assert r.status_code == 422
    assert r.json["error"]["code"] == "INVALID_IMAGE"
    assert "640x480" in r.json["error"]["message"]
    assert "64x48" in r.json["error"]["message"]


def _oriented_tiff(image: Image.Image, orientation: int) -> bytes:
    stored = image.transpose(Image.Transpose.ROTATE_90) if orientation == 6 else image
    buffer = io.BytesIO()
    stored.save(buffer, "TIFF", tiffinfo={274: orientation})
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_oriented_tiff_comes_out_upright(client: FlaskClient, fmt: str) -> None:
    r = post_image(client, _oriented_tiff(marked(300, 200), 6), "scan.tif", outputFormat=fmt)
    assert r.status_code == 200
    out = open_image(r.data)
    assert out.size == (300, 200)
    assert close(pixel(out, 20, 20)[:3], RED, 30)
    assert close(pixel(out, 280, 20)[:3], GREEN, 30)
    assert close(pixel(out, 20, 180)[:3], BLUE, 30)
    source = open_source(_oriented_tiff(marked(300, 200), 6), Limits())
    assert source.size == (300, 200)
    assert source.stored_size == (200, 300)


def _lab_tiff(lab: tuple[float, float, float], bits: int, photometric: int = 8) -> bytes:
    """An uncompressed 4x2 Lab TIFF (Pillow writes no 16-bit or ICC Lab, so by hand)."""
    lightness, a, b = lab
    if bits == 16:
        if photometric == 8:  # CIELab: L 0..65535, a and b signed
            sample = struct.pack("<Hhh", round(lightness * 65535 / 100), round(a * 256),
                                 round(b * 256))
        else:  # ICCLab: a and b offset by 32768
            sample = struct.pack("<HHH", round(lightness * 65535 / 100),
                                 round(a * 256) + 32768, round(b * 256) + 32768)
    else:
        sample = bytes([round(lightness * 255 / 100), (round(a) + (0 if photometric == 8
                                                                    else 128)) & 0xFF,
                        (round(b) + (0 if photometric == 8 else 128)) & 0xFF])
    pixels = sample * 8
    entries = [(256, 3, 1, 4), (257, 3, 1, 2), (258, 3, 3, 0), (259, 3, 1, 1),
               (262, 3, 1, photometric), (273, 4, 1, 0), (277, 3, 1, 3), (278, 3, 1, 2),
               (279, 4, 1, len(pixels)), (284, 3, 1, 1)]
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at = 8 + ifd_size
    data_at = bits_at + 6
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_at
        elif tag == 273:
            value = data_at
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 and count == 1 \
            else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<HHH", bits, bits, bits) + pixels


def _lab_to_srgb(lab: tuple[float, float, float]) -> tuple[int, ...]:
    image = Image.new("LAB", (1, 1), (round(lab[0] * 255 / 100), round(lab[1]) + 128,
                                      round(lab[2]) + 128))
    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"),
                                        ImageCms.createProfile("sRGB"), "LAB", "RGB")
    result = ImageCms.applyTransform(image, transform)
    assert result is not None
    value = result.getpixel((0, 0))
    assert isinstance(value, tuple)
    return value


@pytest.mark.parametrize(("bits", "photometric"), [(16, 8), (16, 9), (8, 9), (8, 8)])
@pytest.mark.parametrize("lab", [(53.2, 80.1, 67.2), (46.2, -51.7, 49.9), (30.0, 20.0, -60.0)])
def test_lab_tiff_becomes_srgb(client: FlaskClient, bits: int, photometric: int,
                               lab: tuple[float, float, float]) -> None:
    r = post_image(client, _lab_tiff(lab, bits, photometric), "lab.tif", outputFormat="png")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = open_image(r.data).convert("RGB")
    assert out.size == (4, 2)
    expected = _lab_to_srgb(lab)
    assert close(pixel(out, 1, 1)[:3], expected[:3], 4), (pixel(out, 1, 1), expected)


def test_any_exception_of_a_decoder_is_invalid_image(client: FlaskClient,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's plugins raise TypeError (and others) on some broken files; whatever the
    # type, broken bytes are the client's problem: 422, never 500.
    with jobs_with(png_loader_raising_type_error, monkeypatch):
        r = post_image(client, encode(photo(20, 10), "PNG"), "broken.png")
    assert r.status_code == 422
    assert r.json["error"]["code"] == "INVALID_IMAGE"


def test_a_jpeg_libjpeg_cannot_scale_while_decoding_is_decoded_whole(
        client: FlaskClient) -> None:
    # sharp's testimgl.jpg decodes whole, but libjpeg's 1/4 and 1/8 scales stop with
    # "broken data stream": a resize asking for those scales still gets its image.
    data = (DIFFERENTIAL / "sharp-fixtures" / "testimgl.jpg").read_bytes()
    with Image.open(io.BytesIO(data)) as scaled:
        scaled.draft("RGB", (40, 26))
        with pytest.raises(OSError, match="broken data stream"):
            scaled.load()
    with Image.open(io.BytesIO(data)) as whole:
        expected = whole.convert("RGB").resize((40, 26), Image.Resampling.LANCZOS)
    r = post_image(client, data, "testimgl.jpg", maxWidth=40, outputFormat="png")
    assert r.status_code == 200, r.json
    out = open_image(r.data)
    assert out.size == (40, 26)
    assert_image_similar(out.convert("RGB"), expected, 8.0)


def test_truncated_png_is_invalid_image(client: FlaskClient) -> None:
    data = encode(photo(64, 48), "PNG")
    r = post_image(client, data[: len(data) // 2], "cut.png")
    assert r.status_code == 422
    assert r.json["error"]["code"] == "INVALID_IMAGE"


def _tall_jpeg(width: int = 193, height: int = 31237) -> bytes:
    return encode(Image.new("RGB", (width, height), (200, 120, 40)), "JPEG", quality=50)


def test_webp_too_small_for_the_size_is_a_422_that_says_how(client: FlaskClient) -> None:
    r = post_image(client, _tall_jpeg(), "tall.jpg", outputFormat="webp")
    assert r.status_code == 422
    error = r.json["error"]
    assert error["code"] == "TOO_MANY_PIXELS"
    assert "16383" in error["message"]
    assert "maxHeight" in error["message"]
    assert "jpeg" in error["details"]["outputFormat"]
    assert set(error["details"]) == {"outputFormat", "maxHeight"}

    fixed = post_image(client, _tall_jpeg(), "tall.jpg", outputFormat="webp", maxHeight=16383)
    assert fixed.status_code == 200
    assert open_image(fixed.data).size == (101, 16383)


@pytest.mark.parametrize(("source", "expected"), [("JPEG", "JPEG"), ("TIFF", "JPEG"),
                                                  ("GIF", "PNG"), ("BMP", "PNG")])
def test_auto_never_picks_a_format_that_cannot_hold_the_size(
        client: FlaskClient, source: str, expected: str) -> None:
    # A photo for JPEG and TIFF (auto's JPEG where WebP cannot go), a graphic for GIF, BMP.
    tall = photo(40, 17000) if expected == "JPEG" else Image.new("RGB", (40, 17000),
                                                                  (30, 90, 160))
    tall.paste((200, 30, 30), (0, 0, 40, 300))
    data = encode(tall if source != "GIF" else tall.convert("P", palette=Image.Palette.ADAPTIVE),
                  source)
    r = post_image(client, data, "tall.bin")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = open_image(r.data)
    assert out.format == expected
    assert out.size == (40, 17000)
    assert close(pixel(out, 20, 100)[:3], (200, 30, 30), 12)


def test_formats_table_knows_each_output_limit() -> None:
    assert FORMATS["webp"].max_side == 16383
    assert FORMATS["jpeg"].max_side == 65500
    assert FORMATS["avif"].max_side == 32768
    assert can_hold(FORMATS["webp"], 16383, 1)
    assert not can_hold(FORMATS["webp"], 1, 16384)
    assert can_hold(FORMATS["png"], 1, 16384)


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif"])
def test_an_asked_format_that_cannot_hold_the_size_is_refused(name: str) -> None:
    # The size check after the pipeline (a free rotation grows the canvas) calls this.
    source = Source("png", Image.new("RGB", (1, 1)), 1, 1)
    limit = FORMATS[name].max_side
    assert limit is not None
    assert resolve_output(CompressOptions(output_format=name), source, (limit, 1)).name == name
    with pytest.raises(OutputTooLarge) as caught:
        resolve_output(CompressOptions(output_format=name), source, (1, limit + 1))
    assert caught.value.code == "TOO_MANY_PIXELS"
    assert f"maxHeight={limit}" in caught.value.message
    auto = resolve_output(CompressOptions(), source, (1, limit + 1))
    assert auto.name == "png"


def test_heic_whose_ispe_lies_is_refused(client: FlaskClient) -> None:
    # libheif compares ispe with what it decodes; its refusal must be a 422 too.
    data = bytearray(encode(photo(64, 48), "HEIF"))
    at = data.find(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", 16, 12)
    r = post_image(client, bytes(data), "lie.heic")
    assert r.status_code == 422
    assert r.json["error"]["code"] == "INVALID_IMAGE"


def test_info_of_an_oriented_tiff_tells_stored_and_upright_sizes() -> None:
    from feather_core.inspect import inspect_image

    info = inspect_image(_oriented_tiff(marked(300, 200), 6))
    assert (info.width, info.height) == (300, 200)
    assert (info.stored_width, info.stored_height, info.orientation) == (200, 300, 6)


def test_gif_frame_placed_far_off_the_screen_is_counted_at_the_canvas_it_grows() -> None:
    # Pillow grows the image to hold a frame placed past the logical screen; a tiny
    # frame at (60000, 60000) would make a 3.6-gigapixel canvas on the second frame.
    from feather_core.errors import TooManyPixels
    from feather_core.inspect import inspect_image

    frames = [Image.new("RGB", (10, 10), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    data = bytearray(buffer.getvalue())
    descriptors = [i for i in range(13, len(data) - 9) if data[i] == 0x2C
                   and data[i + 5 : i + 9] == struct.pack("<HH", 10, 10)]
    assert len(descriptors) == 2
    data[descriptors[1] + 1 : descriptors[1] + 5] = struct.pack("<HH", 60000, 60000)
    with pytest.raises(TooManyPixels):
        inspect_image(bytes(data))
    with pytest.raises(TooManyPixels):
        compress(bytes(data), CompressOptions(output_format="webp"))


def test_png_whose_pixel_data_breaks_is_refused_not_half_decoded() -> None:
    # Pillow decodes a PNG's pixels while looking for EXIF after them; a failure there
    # was swallowed with the EXIF, and a half-decoded picture came out as a 200.
    data = bytearray(encode(photo(64, 48), "PNG", compress_level=1))
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    for offset in range(length // 2, length - 8):
        data[idat + 4 + offset] ^= 0x5A
    import zlib

    data[idat + 4 + length : idat + 8 + length] = struct.pack(
        ">I", zlib.crc32(bytes(data[idat : idat + 4 + length])))
    with pytest.raises(InvalidImage):
        compress(bytes(data), CompressOptions(output_format="png"))


def test_16_bit_grey_png_keeps_its_transparent_colour_key() -> None:
    import numpy as np

    values = np.full((10, 20), 40000, dtype="<u2")
    values[:, :10] = 1234
    grey = Image.frombytes("I;16", (20, 10), values.tobytes())
    buffer = io.BytesIO()
    grey.save(buffer, "PNG", transparency=1234)
    out = open_image(compress(buffer.getvalue(), CompressOptions(output_format="png")).data)
    assert out.mode == "LA"
    assert pixel(out, 5, 5)[3] == 0
    assert pixel(out, 15, 5)[3] == 255
    assert close(pixel(out, 15, 5)[:1], (round(40000 / 257),), 1)
