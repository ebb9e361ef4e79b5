"""The clean aperture (``clap``) of an AVIF read from its boxes: which rectangle of the
coded picture the file shows, whatever the order of its transforms, and nothing at all
(never an exception) when the box cannot be used."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from feather_core.isobmff import clean_aperture
from tests.images import clap_body, clap_for, encode, photo, property_box, with_item_properties

CODED = (96, 64)


@pytest.fixture(scope="module")
def avif() -> bytes:
    return encode(photo(*CODED), "AVIF", quality=60)


def _irot(quarters: int) -> bytes:
    return property_box(b"irot", bytes([quarters]))


def _imir(axis: int) -> bytes:
    return property_box(b"imir", bytes([axis]))


def _turned(image: Image.Image, transforms: list[tuple[str, int]]) -> Image.Image:
    """``image`` as irot (anticlockwise quarter turns) and imir (0: top and bottom swap,
    1: left and right, as libavif and libheif read the axis) leave it."""
    for kind, value in transforms:
        if kind == "irot":
            image = image.rotate(90 * value, expand=True)
        else:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM if value == 0
                                    else Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def _numbered(size: tuple[int, int]) -> Image.Image:
    """A picture whose every pixel holds its own index, so a crop tells where it came from."""
    width, height = size
    return Image.fromarray(np.arange(width * height, dtype=np.int32).reshape(height, width), "I")


def test_an_avif_without_a_clap_box_shows_its_whole_picture(avif: bytes) -> None:
    assert clean_aperture(avif, CODED) is None


@pytest.mark.parametrize("rect", [(20, 10, 40, 30), (0, 0, 95, 64), (1, 3, 1, 1),
                                  (7, 5, 33, 21), (0, 0, *CODED)])
def test_the_crop_is_the_rectangle_the_clap_box_describes(avif: bytes,
                                                          rect: tuple[int, int, int, int]) -> None:
    assert clean_aperture(with_item_properties(avif, clap_for(rect, CODED)), CODED) == rect


def test_half_pixel_offsets_round_as_libheif_rounds_them(avif: bytes) -> None:
    # libheif rounds the left edge down and the top edge to the nearest pixel.
    left, top, width, height = 20, 10, 41, 31
    body = clap_body((width, 1), (height, 1), (2 * left + width - CODED[0] + 1, 2),
                     (2 * top + height - CODED[1] + 1, 2))
    data = with_item_properties(avif, property_box(b"clap", body))
    assert clean_aperture(data, CODED) == (left, top + 1, width, height)


def test_a_rectangle_reaching_past_the_picture_is_clipped_to_it(avif: bytes) -> None:
    # libheif clips it too; only one that misses the picture altogether is unusable.
    data = with_item_properties(avif, clap_for((80, 50, 40, 30), CODED))
    assert clean_aperture(data, CODED) == (80, 50, CODED[0] - 80, CODED[1] - 50)


@pytest.mark.parametrize("transforms", [
    [("irot", 1)], [("irot", 2)], [("irot", 3)], [("imir", 0)], [("imir", 1)],
    [("irot", 1), ("imir", 0)], [("imir", 1), ("irot", 3)], [("irot", 3), ("imir", 1)],
])
@pytest.mark.parametrize("clap_first", [True, False])
def test_the_crop_is_cut_where_it_stands_among_the_transforms(
        avif: bytes, transforms: list[tuple[str, int]], clap_first: bool) -> None:
    # MIAF puts clap before irot and imir: the crop is then cut from the coded picture.
    # A file that turns first crops the turned picture (libheif follows the order);
    # either way the rectangle returned is where those pixels lie in the coded picture.
    coded = _numbered(CODED)
    before = [] if clap_first else transforms
    cut_from = _turned(coded, before)
    rect = (5, 7, min(40, cut_from.width - 5), min(30, cut_from.height - 7))
    boxes = [property_box(b"irot" if k == "irot" else b"imir", bytes([v])) for k, v in transforms]
    clap = clap_for(rect, cut_from.size)
    data = with_item_properties(avif, *([clap, *boxes] if clap_first else [*boxes, clap]))
    found = clean_aperture(data, CODED)
    assert found is not None
    left, top, width, height = found
    expected = cut_from.crop((rect[0], rect[1], rect[0] + rect[2], rect[1] + rect[3]))
    got = _turned(coded.crop((left, top, left + width, top + height)), before)
    assert np.array_equal(np.asarray(got), np.asarray(expected))


def test_only_the_primary_items_clap_counts() -> None:
    # With alpha there are two items; the colour item is the primary one (pitm).
    data = with_item_properties(encode(photo(*CODED, mode="RGBA"), "AVIF"),
                                clap_for((20, 10, 40, 30), CODED))
    assert clean_aperture(data, CODED) == (20, 10, 40, 30)
    pitm = data.index(b"pitm")
    primary = int.from_bytes(data[pitm + 8 : pitm + 10], "big")
    other = (primary % 2) + 1
    to_alpha = data[: pitm + 8] + other.to_bytes(2, "big") + data[pitm + 10 :]
    assert clean_aperture(to_alpha, CODED) is None
    # No pitm at all (renamed to a free box of the same size): the first item counts.
    no_primary = data[:pitm] + b"free" + data[pitm + 4 :]
    assert clean_aperture(no_primary, CODED) == (20, 10, 40, 30)


UNUSABLE = {
    "zero width denominator": clap_body((40, 0), (30, 1), (0, 1), (0, 1)),
    "zero height denominator": clap_body((40, 1), (30, 0), (0, 1), (0, 1)),
    "zero offset denominators": clap_body((40, 1), (30, 1), (0, 0), (0, 0)),
    "zero width": clap_body((0, 1), (30, 1), (0, 1), (0, 1)),
    "width past 2^31 - 1": clap_body((0x80000000, 1), (30, 1), (0, 1), (0, 1)),
    "denominator past 2^31 - 1": clap_body((40, 1), (30, 0xFFFFFFFF), (0, 1), (0, 1)),
    "left of the picture": clap_body((40, 1), (30, 1), (-200, 1), (0, 1)),
    "below the picture": clap_body((40, 1), (30, 1), (0, 1), (0x7FFFFFFF, 1)),
    "cut short": clap_body((40, 1), (30, 1), (0, 1), (0, 1))[:20],
}


@pytest.mark.parametrize("body", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_an_unusable_clap_box_is_ignored(avif: bytes, body: bytes) -> None:
    assert clean_aperture(with_item_properties(avif, property_box(b"clap", body)), CODED) is None


def test_an_unusable_clap_box_leaves_a_later_one_to_count(avif: bytes) -> None:
    broken = property_box(b"clap", UNUSABLE["zero width denominator"])
    data = with_item_properties(avif, broken, clap_for((20, 10, 40, 30), CODED))
    assert clean_aperture(data, CODED) == (20, 10, 40, 30)


def test_broken_boxes_never_raise(avif: bytes) -> None:
    data = with_item_properties(avif, clap_for((20, 10, 40, 30), CODED),
                                property_box(b"irot", b"\x01"))
    meta_end = data.index(b"mdat")
    damaged = [data[:cut] for cut in range(meta_end + 1)]
    rng = random.Random(5)
    for _ in range(2000):
        broken = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            broken[rng.randrange(meta_end)] = rng.randrange(256)
        damaged.append(bytes(broken))
    for sample in damaged:
        found = clean_aperture(sample, CODED)
        if found is not None:
            left, top, width, height = found
            assert 0 <= left < left + width <= CODED[0]
            assert 0 <= top < top + height <= CODED[1]
