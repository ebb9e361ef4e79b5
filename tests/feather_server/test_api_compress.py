"""POST /api/compress and /api/convert: fields, defaults and their visible effects."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from PIL import Image

from tests.api import post_image
from tests.helpers import assert_image_similar, close, open_image, pixel
from tests.images import encode, marked, photo


@pytest.fixture
def jpeg() -> bytes:
    return encode(photo(800, 600), "JPEG", quality=95)


def test_defaults_make_a_photo_webp_and_keep_its_size(client: FlaskClient, jpeg: bytes) -> None:
    r = post_image(client, jpeg)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/webp"
    out = open_image(r.data)
    assert out.format == "WEBP"
    assert out.size == (800, 600)
    assert r.headers["X-Output-Quality"] == "80"
    assert len(r.data) < len(jpeg)
    assert_image_similar(out, open_image(jpeg), 6)


@pytest.mark.parametrize(("fmt", "pil", "mime"), [
    ("jpeg", "JPEG", "image/jpeg"), ("png", "PNG", "image/png"),
    ("webp", "WEBP", "image/webp"), ("avif", "AVIF", "image/avif"),
])
def test_output_formats(client: FlaskClient, fmt: str, pil: str, mime: str) -> None:
    source = photo(320, 240)
    r = post_image(client, encode(source, "PNG"), "in.png", outputFormat=fmt)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == mime
    out = open_image(r.data)
    assert out.format == pil
    assert out.size == (320, 240)
    assert_image_similar(out, source, 8)


def test_quality_changes_size(client: FlaskClient, jpeg: bytes) -> None:
    low = post_image(client, jpeg, outputFormat="webp", quality=20)
    high = post_image(client, jpeg, outputFormat="webp", quality=95)
    assert low.headers["X-Output-Quality"] == "20"
    assert high.headers["X-Output-Quality"] == "95"
    assert len(low.data) < len(high.data)


@pytest.mark.parametrize(("fields", "size"), [
    ({"maxWidth": 400}, (400, 300)),
    ({"maxHeight": 150}, (200, 150)),
    ({"maxWidth": 400, "maxHeight": 100}, (133, 100)),
    ({"maxWidth": 5000}, (800, 600)),  # never enlarged
])
def test_max_width_height(client: FlaskClient, jpeg: bytes, fields: dict[str, int],
                          size: tuple[int, int]) -> None:
    r = post_image(client, jpeg, **fields)
    assert r.status_code == 200
    assert open_image(r.data).size == size
    assert r.headers["X-Output-Width"] == str(size[0])
    assert r.headers["X-Output-Height"] == str(size[1])
    assert r.headers["X-Resized"] == ("false" if size == (800, 600) else "true")


def test_resize_keeps_the_picture(client: FlaskClient) -> None:
    source = marked(1200, 800)
    r = post_image(client, encode(source, "JPEG", quality=95), maxWidth=300, outputFormat="png")
    out = open_image(r.data)
    assert out.size == (300, 200)
    assert_image_similar(out, source, 6)


def test_crop_on_the_upright_source(client: FlaskClient) -> None:
    source = marked(300, 200)  # red TL, green TR, blue BL, white BR
    r = post_image(client, encode(source, "PNG"), "m.png", cropX=150, cropY=0,
                   cropWidth=150, cropHeight=100)
    out = open_image(r.data)
    assert out.size == (150, 100)
    assert close(pixel(out, 75, 50), (20, 200, 20, 255))


def test_crop_outside_the_image_is_invalid(client: FlaskClient) -> None:
    r = post_image(client, encode(marked(300, 200), "PNG"), "m.png", cropX=400, cropY=0,
                   cropWidth=10, cropHeight=10)
    assert r.status_code == 400
    assert r.json["error"]["code"] == "INVALID_INPUT"
    assert "cropX" in r.json["error"]["details"]


def test_crop_is_clipped_to_the_image(client: FlaskClient) -> None:
    r = post_image(client, encode(marked(300, 200), "PNG"), "m.png", cropX=250, cropY=150,
                   cropWidth=500, cropHeight=500)
    assert open_image(r.data).size == (50, 50)


@pytest.mark.parametrize(("degrees", "size", "corner"), [
    (90, (200, 300), (20, 20, 220)),     # clockwise: blue (BL) comes to the top left
    (-90, (200, 300), (20, 200, 20)),    # counter-clockwise: green (TR) to the top left
    (180, (300, 200), (250, 250, 250)),
    (270, (200, 300), (20, 200, 20)),
])
def test_rotate_right_angles(client: FlaskClient, degrees: int, size: tuple[int, int],
                             corner: tuple[int, int, int]) -> None:
    r = post_image(client, encode(marked(300, 200), "PNG"), "m.png", rotate=degrees)
    out = open_image(r.data)
    assert out.size == size
    assert close(pixel(out, 10, 10)[:3], corner)


def test_free_rotation_grows_the_canvas_and_fills(client: FlaskClient) -> None:
    png = encode(marked(300, 200), "PNG")
    as_png = open_image(post_image(client, png, "m.png", rotate=45).data)
    assert as_png.width > 300
    assert as_png.height > 200
    assert pixel(as_png, 0, 0)[3] == 0  # transparent corner where the output has alpha
    as_jpeg = open_image(post_image(client, png, "m.png", rotate=45, outputFormat="jpeg").data)
    assert close(pixel(as_jpeg, 0, 0)[:3], (255, 255, 255))


@pytest.mark.parametrize(("field", "corner"), [
    ("flip", (20, 20, 220)),    # vertical mirror: blue (BL) to the top left
    ("flop", (20, 200, 20)),    # horizontal mirror: green (TR) to the top left
])
def test_flip_flop(client: FlaskClient, field: str, corner: tuple[int, int, int]) -> None:
    r = post_image(client, encode(marked(300, 200), "PNG"), "m.png", **{field: "true"})
    assert close(pixel(open_image(r.data), 10, 10)[:3], corner)


def _mean(image: Image.Image) -> float:
    gray = image.convert("L")
    return sum(i * n for i, n in enumerate(gray.histogram())) / (gray.width * gray.height)


def test_brightness(client: FlaskClient) -> None:
    png = encode(photo(200, 150), "PNG")
    dark = open_image(post_image(client, png, "p.png", brightness=0.5).data)
    light = open_image(post_image(client, png, "p.png", brightness=1.5).data)
    assert _mean(dark) < _mean(open_image(png)) < _mean(light)


def test_contrast(client: FlaskClient) -> None:
    png = encode(photo(200, 150), "PNG")
    flat = open_image(post_image(client, png, "p.png", contrast=0.2).data).convert("L")
    low, high = flat.getextrema()
    original_low, original_high = open_image(png).convert("L").getextrema()
    assert high - low < (original_high - original_low) / 2


def test_saturation_zero_is_gray(client: FlaskClient) -> None:
    r = post_image(client, encode(marked(300, 200), "PNG"), "m.png", saturation=0)
    red, green, blue = pixel(open_image(r.data), 10, 10)[:3]
    assert max(red, green, blue) - min(red, green, blue) <= 2


def test_grayscale(client: FlaskClient) -> None:
    r = post_image(client, encode(photo(200, 150), "JPEG"), grayscale="true", outputFormat="jpeg")
    out = open_image(r.data)
    assert out.mode == "L"
    # WebP has no grayscale mode: equal channels instead.
    out = open_image(post_image(client, encode(photo(200, 150), "JPEG"), grayscale="true").data)
    red, green, blue = pixel(out, 100, 75)[:3]
    assert max(red, green, blue) - min(red, green, blue) <= 3


def test_blur_and_sharpen(client: FlaskClient) -> None:
    from PIL import ImageFilter, ImageStat

    png = encode(marked(300, 200), "PNG")
    def edges(image: Image.Image) -> float:
        return float(ImageStat.Stat(image.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0])
    original = edges(open_image(png))
    # Lossless, so the palette's dithering grain does not count as edges.
    blurred = edges(open_image(post_image(client, png, "m.png", blur=5, quality=100).data))
    sharpened = edges(open_image(post_image(client, encode(photo(200, 150), "PNG"), "p.png",
                                            sharpen="on").data))
    assert blurred < original
    assert sharpened > edges(photo(200, 150))


def test_progressive_jpeg(client: FlaskClient, jpeg: bytes) -> None:
    r = post_image(client, jpeg, progressive="1", outputFormat="jpeg")
    out = open_image(r.data)
    assert out.info.get("progressive") or out.info.get("progression")
    plain = open_image(post_image(client, jpeg, progressive="0", outputFormat="jpeg").data)
    assert not (plain.info.get("progressive"))
    assert not (plain.info.get("progression"))


def test_effort_trades_time_for_bytes(client: FlaskClient, jpeg: bytes) -> None:
    fast = post_image(client, jpeg, outputFormat="webp", effort=0)
    small = post_image(client, jpeg, outputFormat="webp", effort=9)
    assert fast.status_code == small.status_code == 200
    assert len(small.data) <= len(fast.data)


def test_preview_mode_still_gives_the_asked_image(client: FlaskClient, jpeg: bytes) -> None:
    r = post_image(client, jpeg, outputFormat="avif", mode="preview", maxWidth=200)
    assert r.status_code == 200
    assert open_image(r.data).size == (200, 150)


@pytest.mark.parametrize("value", ["true", "1", "on", "TRUE", "yes"])
def test_booleans_accept_the_usual_spellings(client: FlaskClient, value: str) -> None:
    r = post_image(client, encode(marked(300, 200), "PNG"), "m.png", flop=value)
    assert close(pixel(open_image(r.data), 10, 10)[:3], (20, 200, 20))


@pytest.mark.parametrize(("fields", "bad"), [
    ({"quality": 0}, "quality"), ({"quality": 101}, "quality"), ({"quality": "high"}, "quality"),
    ({"outputFormat": "gif"}, "outputFormat"), ({"maxWidth": 0}, "maxWidth"),
    ({"maxHeight": "-3"}, "maxHeight"), ({"targetMB": "0"}, "targetMB"),
    ({"targetMB": "nan"}, "targetMB"), ({"mode": "draft"}, "mode"), ({"effort": 10}, "effort"),
    ({"rotate": 361}, "rotate"), ({"brightness": 0}, "brightness"),
    ({"saturation": 3.5}, "saturation"), ({"contrast": 0.05}, "contrast"),
    ({"blur": 11}, "blur"), ({"grayscale": "perhaps"}, "grayscale"),
    ({"stripMetadata": "2"}, "stripMetadata"), ({"progressive": "x"}, "progressive"),
    ({"cropWidth": 10}, "cropX"), ({"sharpen": "y3s"}, "sharpen"),
    ({"flip": "no way"}, "flip"), ({"flop": "-"}, "flop"),
])
def test_bad_values_name_the_field(client: FlaskClient, jpeg: bytes, fields: dict[str, object],
                                   bad: str) -> None:
    r = post_image(client, jpeg, **fields)
    assert r.status_code == 400
    body = r.json["error"]
    assert body["code"] == "INVALID_INPUT"
    assert bad in body["details"]


def test_all_bad_fields_are_reported_together(client: FlaskClient, jpeg: bytes) -> None:
    r = post_image(client, jpeg, quality=0, blur=99, mode="x")
    assert set(r.json["error"]["details"]) == {"quality", "blur", "mode"}


def test_convert_requires_an_output_format(client: FlaskClient, jpeg: bytes) -> None:
    for fields in ({}, {"outputFormat": "auto"}):
        r = post_image(client, jpeg, path="/api/convert", **fields)
        assert r.status_code == 400
        assert "outputFormat" in r.json["error"]["details"]


def test_convert_ignores_target(client: FlaskClient, jpeg: bytes) -> None:
    r = post_image(client, jpeg, path="/api/convert", outputFormat="png", targetMB="0.001")
    assert r.status_code == 200
    assert open_image(r.data).format == "PNG"
    assert open_image(r.data).size == (800, 600)


def test_convert_applies_the_same_fields(client: FlaskClient, jpeg: bytes) -> None:
    r = post_image(client, jpeg, path="/api/convert", outputFormat="webp", maxWidth=200,
                   quality=60)
    out = open_image(r.data)
    assert out.format == "WEBP"
    assert out.size == (200, 150)
    assert r.headers["X-Output-Quality"] == "60"


@pytest.mark.parametrize(("fields", "resized"), [
    ({"rotate": 33, "cropX": 10, "cropY": 10, "cropWidth": 300, "cropHeight": 200}, "false"),
    ({"rotate": 33, "maxWidth": 200}, "true"),
    ({"maxWidth": 400}, "true"),  # exactly half: the JPEG is decoded at that size directly
])
def test_resized_means_max_width_or_height_shrank_it(client: FlaskClient, jpeg: bytes,
                                                       fields: dict[str, int],
                                                       resized: str) -> None:
    r = post_image(client, jpeg, **fields)
    assert r.status_code == 200
    assert r.headers["X-Resized"] == resized
