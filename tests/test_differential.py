"""Feather decodes real files as reference decoders do (libvips, pillow-heif, Pillow).

The committed set under tests/resources/differential/ covers each input format and the
classes that went wrong before (alpha AVIF, oriented TIFF, Lab TIFF, CMYK, 16-bit,
palette with tRNS, APNG, animated GIF). ``make corpus-check`` runs the same comparison
over any folder.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.images import marked, photo
from tests.paths import RESOURCES
from tools import differential
from tools.differential import KINDS, Side, compare_sides, load_known

DIFFERENTIAL = RESOURCES / "differential"


def test_committed_files_decode_as_the_references_do() -> None:
    files = differential.image_files(DIFFERENTIAL)
    assert len(files) >= 15
    report = differential.run(DIFFERENTIAL, files, load_known(), jobs=1)
    out = io.StringIO()
    differential.print_report(report, out, verbose=True)
    assert not report.unexplained, out.getvalue()
    formats = {c.format for c in report.comparisons}
    assert formats >= {"jpeg", "png", "webp", "gif", "tiff", "bmp", "avif", "heic", "svg"}
    # Every file was really compared: none refused by both sides.
    same = [c for c in report.comparisons if not c.differences]
    assert all(c.mean_diff is not None for c in same), out.getvalue()


def test_every_committed_file_has_its_origin_noted() -> None:
    origin = (DIFFERENTIAL / "ORIGIN.md").read_text()
    for path in differential.image_files(DIFFERENTIAL):
        assert f"| {path.relative_to(DIFFERENTIAL).as_posix()} |" in origin


def test_known_differences_are_well_formed() -> None:
    known = load_known()
    assert known
    assert all(k.kind in KINDS and k.why for k in known)


def _side(image: Image.Image) -> Side:
    return Side(image=image, frames=1)


def test_the_comparison_sees_a_turned_image() -> None:
    image = marked(60, 40)
    differences, _ = compare_sides(_side(image.transpose(Image.Transpose.ROTATE_270)),
                                   _side(image), "jpeg")
    assert [kind for kind, _ in differences] == ["orientation"]
    differences, _ = compare_sides(_side(image.transpose(Image.Transpose.ROTATE_180)),
                                   _side(image), "jpeg")
    assert [kind for kind, _ in differences] == ["orientation"]


def test_the_comparison_sees_lost_transparency_and_other_pixels() -> None:
    rgba = photo(50, 30, mode="RGBA")
    differences, _ = compare_sides(_side(rgba.convert("RGB")), _side(rgba), "png")
    assert "alpha" in [kind for kind, _ in differences]
    differences, diff = compare_sides(_side(photo(50, 30, seed=1).convert("L").convert("RGB")),
                                      _side(photo(50, 30, seed=1)), "png")
    assert [kind for kind, _ in differences] == ["pixels"]
    assert diff is not None
    assert diff > 4
    differences, diff = compare_sides(_side(photo(50, 30)), _side(photo(50, 30)), "png")
    assert differences == []
    assert diff == 0


def test_the_comparison_sees_refusals_and_sizes() -> None:
    image = photo(40, 30)
    assert compare_sides(Side(error="INVALID_IMAGE: broken"), _side(image), "png")[0][0][0] \
        == "feather-refuses"
    assert compare_sides(_side(image), Side(error="libvips: broken"), "png")[0][0][0] \
        == "reference-refuses"
    assert compare_sides(Side(error="too big", too_large=True), _side(image), "png")[0] == []
    differences, _ = compare_sides(_side(image), _side(photo(41, 30)), "png")
    assert [kind for kind, _ in differences] == ["dimensions"]


def test_known_list_explains_only_its_kind(tmp_path: Path) -> None:
    known = tmp_path / "known.txt"
    known.write_text("# comment\ncorpus/*.png\tpixels\tbecause\n")
    entries = load_known(known)
    assert differential._explain("corpus/a.png", "pixels", entries) == "because"
    assert differential._explain("corpus/a.png", "alpha", entries) == ""
    known.write_text("corpus/*.png pixels because\n")
    with pytest.raises(ValueError, match="tabs"):
        load_known(known)
