"""An AVIF comes out cut to its clean aperture (``clap``), as libheif, sharp and browsers
show it, not at the whole coded size Pillow's AVIF plugin hands back; a HEIC is cut once.

The files are Pillow's own AVIFs with the boxes written in (``tests.images``); pillow-heif
(libheif) reads their headers as the reference for the size, libvips (libheif and dav1d)
decodes them as the reference for the pixels.
"""

from __future__ import annotations

import io

import pillow_heif
import pytest
from flask.testing import FlaskClient
from PIL import Image

from feather_core.decode import Source, decode
from feather_core.inspect import inspect_image
from tests.api import post_image
from tests.helpers import mean_abs_diff, open_image
from tests.images import (
    animated_gif,
    clap_body,
    clap_for,
    encode,
    photo,
    property_box,
    with_item_properties,
)
from tools.differential import mean_difference, reference_side

CODED = (96, 64)
RECT = (20, 10, 40, 30)


def _avif(image: Image.Image) -> bytes:
    return encode(image, "AVIF", quality=95, subsampling="4:4:4")


def _box(rect: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    left, top, width, height = rect
    return left, top, left + width, top + height


def _compressed(client: FlaskClient, data: bytes, **fields: str) -> Image.Image:
    # Lossless PNG unless asked otherwise: the pixels are the decoder's.
    r = post_image(client, data, "photo.avif",
                   **({"outputFormat": "png", "quality": "100"} | fields))
    assert r.status_code == 200, r.get_data(as_text=True)
    return open_image(r.data)


def _nearest_offset(image: Image.Image, source: Image.Image,
                    rect: tuple[int, int, int, int]) -> tuple[int, int]:
    """Which shift of ``rect`` (a pixel either way) cuts from ``source`` what ``image`` shows."""
    left, top, width, height = rect
    shifts = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    return min(shifts, key=lambda s: mean_abs_diff(image, source.crop(
        (left + s[0], top + s[1], left + s[0] + width, top + s[1] + height))))


@pytest.mark.parametrize("rect", [RECT, (7, 5, 33, 21), (1, 1, 94, 62)])
def test_avif_comes_out_cut_to_its_clean_aperture(client: FlaskClient,
                                                  rect: tuple[int, int, int, int]) -> None:
    source = photo(*CODED)
    data = with_item_properties(_avif(source), clap_for(rect, CODED))
    out = _compressed(client, data)
    assert out.size == rect[2:]
    assert out.size == pillow_heif.open_heif(data).size
    assert mean_abs_diff(out, source.crop(_box(rect))) < 4
    assert _nearest_offset(out, source, rect) == (0, 0)
    info = inspect_image(data)
    assert (info.width, info.height, info.stored_width, info.stored_height) == (*rect[2:],
                                                                                *rect[2:])


def test_half_pixel_offsets_cut_where_libheif_cuts(client: FlaskClient) -> None:
    # MIAF wants whole numbers; an offset of half a pixel is rounded as libheif rounds it.
    source = photo(*CODED)
    left, top, width, height = RECT
    body = clap_body((width, 1), (height, 1), (2 * left + width - CODED[0] + 1, 2),
                     (2 * top + height - CODED[1] + 1, 2))
    data = with_item_properties(_avif(source), property_box(b"clap", body))
    out = _compressed(client, data)
    reference = reference_side(data, "avif").image
    assert reference is not None
    assert out.size == reference.size == (width, height)
    assert _nearest_offset(out, source, RECT) == _nearest_offset(reference, source, RECT)


def test_transparent_avif_is_cut_alike_in_colour_and_alpha(client: FlaskClient) -> None:
    source = photo(*CODED, mode="RGBA")
    data = with_item_properties(_avif(source), clap_for(RECT, CODED))
    out = _compressed(client, data).convert("RGBA")
    assert out.size == RECT[2:]
    region = source.crop(_box(RECT))
    assert mean_abs_diff(out.getchannel("A"), region.getchannel("A")) < 3
    assert mean_difference(out, region) < 4  # colours weighed by their alpha


def test_a_rotation_after_the_clean_aperture_turns_the_cut_picture(client: FlaskClient) -> None:
    # MIAF's order: clap, then irot. Pillow reports irot as the EXIF orientation, which
    # Feather applies after the cut.
    source = photo(*CODED)
    data = with_item_properties(_avif(source), clap_for(RECT, CODED),
                                property_box(b"irot", b"\x01"))
    out = _compressed(client, data)
    expected = source.crop(_box(RECT)).rotate(90, expand=True)
    assert out.size == expected.size == pillow_heif.open_heif(data).size
    assert mean_abs_diff(out, expected) < 4
    info = inspect_image(data)
    assert (info.width, info.height) == expected.size
    assert (info.stored_width, info.stored_height) == RECT[2:]


def test_a_clean_aperture_after_a_rotation_cuts_the_turned_picture(client: FlaskClient) -> None:
    # Out of MIAF's order, libheif turns first and cuts the turned picture; so does Feather.
    source = photo(*CODED)
    turned = source.rotate(90, expand=True)
    rect = (10, 20, 30, 40)
    data = with_item_properties(_avif(source), property_box(b"irot", b"\x01"),
                                clap_for(rect, turned.size))
    out = _compressed(client, data)
    reference = reference_side(data, "avif").image
    assert reference is not None
    assert out.size == rect[2:] == pillow_heif.open_heif(data).size == reference.size
    assert mean_abs_diff(out, turned.crop(_box(rect))) < 4
    assert mean_abs_diff(out, reference) < 4


def test_an_avif_sequence_comes_out_as_its_first_frame_cut(client: FlaskClient) -> None:
    # Feather reads an AVIF sequence as its first frame (the primary item's picture).
    frames = [photo(*CODED, seed=n) for n in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "AVIF", save_all=True, append_images=frames[1:], duration=100,
                   quality=95, subsampling="4:4:4")
    data = with_item_properties(buffer.getvalue(), clap_for(RECT, CODED))
    out = _compressed(client, data)
    assert out.size == RECT[2:] == pillow_heif.open_heif(data).size
    assert mean_abs_diff(out, frames[0].crop(_box(RECT))) < 4
    assert _nearest_offset(out, frames[0], RECT) == (0, 0)


def test_a_crop_of_the_source_cuts_every_frame_of_an_animation() -> None:
    # Kept animations (GIF, WebP, APNG) have no clap today; the cut reaches every frame all
    # the same, should an animated source carry one.
    image = Image.open(io.BytesIO(animated_gif(3, CODED)))
    source = Source("gif", image, 3, 1, crop=RECT)
    assert source.size == RECT[2:]
    picture = decode(source, keep_animation=True, keep_metadata=False)
    assert len(picture.frames) == 3
    for index, frame in enumerate(picture.frames):
        image.seek(index)
        assert frame.size == RECT[2:]
        assert mean_abs_diff(frame, image.convert("RGB").crop(_box(RECT))) == 0


UNUSABLE = {
    "zero denominator": clap_body((40, 0), (30, 1), (0, 1), (0, 1)),
    "zero offset denominator": clap_body((40, 1), (30, 1), (0, 0), (0, 1)),
    "outside the picture": clap_body((40, 1), (30, 1), (-500, 1), (-500, 1)),
    "no width": clap_body((0, 1), (30, 1), (0, 1), (0, 1)),
    "size past 2^31 - 1": clap_body((40, 1), (0xFFFFFFFF, 1), (0, 1), (0, 1)),
}


@pytest.mark.parametrize("body", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_an_unusable_clean_aperture_is_ignored(client: FlaskClient, body: bytes) -> None:
    source = photo(*CODED)
    data = with_item_properties(_avif(source), property_box(b"clap", body))
    out = _compressed(client, data)
    assert out.size == CODED
    assert mean_abs_diff(out, source) < 4


def test_a_clap_box_cut_short_is_a_broken_file_not_a_server_error(client: FlaskClient) -> None:
    # libavif refuses the box itself (Feather would ignore it): the answer is a 422.
    short = property_box(b"clap", clap_body((40, 1), (30, 1), (0, 1), (0, 1))[:12])
    data = with_item_properties(_avif(photo(*CODED)), short)
    r = post_image(client, data, "photo.avif", outputFormat="png")
    assert r.status_code == 422
    assert r.json["error"]["code"] == "INVALID_IMAGE"


def test_an_avif_asked_as_avif_shows_the_cut_picture(client: FlaskClient) -> None:
    # Re-encoded, or returned as it came when that is smaller: either way a reader that
    # honours clap (libheif here) shows the cut picture, and the headers say its size.
    data = with_item_properties(_avif(photo(*CODED)), clap_for(RECT, CODED))
    r = post_image(client, data, "photo.avif", outputFormat="avif")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert pillow_heif.open_heif(r.data).size == RECT[2:]
    assert (r.headers["X-Output-Width"], r.headers["X-Output-Height"]) == tuple(
        str(v) for v in RECT[2:])


def test_heic_is_cut_to_its_clean_aperture_once(client: FlaskClient) -> None:
    # pillow-heif applies clap itself; Feather must not cut again.
    source = photo(*CODED)
    data = with_item_properties(encode(source, "HEIF", quality=95, chroma=444),
                                clap_for(RECT, CODED))
    assert b"clap" in data
    out = _compressed(client, data)
    assert out.size == RECT[2:] == pillow_heif.open_heif(data).size
    assert mean_abs_diff(out, source.crop(_box(RECT))) < 4
    assert _nearest_offset(out, source, RECT) == (0, 0)
