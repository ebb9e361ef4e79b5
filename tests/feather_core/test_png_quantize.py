"""PNG that shrinks: a dithered palette below quality 100, lossless at 100, oxipng always.

The quality checks decode the outputs and score them with SSIMULACRA2 against the
input, beside Debian's pngquant on the same image (the tool the goal is set against).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import oxipng
import pytest
from PIL import Image

from feather_core import CompressOptions, compress
from feather_core.metadata import png_crc_ok
from feather_core.perceptual import ssimulacra2
from feather_core.png_quantize import PngEffort, quality_range
from tests.helpers import open_image
from tests.images import encode, logo, photo, screenshot


def png(options: CompressOptions, data: bytes) -> bytes:
    result = compress(data, options)
    assert result.format.name == "png"
    return result.data


def pngquant(data: bytes, quality: str = "65-80") -> bytes:
    if shutil.which("pngquant") is None:
        pytest.fail("pngquant is missing: run `make bench-tools` (Debian's pngquant package)")
    done = subprocess.run(["pngquant", f"--quality={quality}", "-"], input=data,
                          capture_output=True, check=True)
    return done.stdout


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    mode = "RGBA" if "A" in a.mode or "transparency" in a.info else "RGB"
    return np.array_equal(np.asarray(a.convert(mode)), np.asarray(b.convert(mode)))


@pytest.fixture(scope="module")
def shot() -> Image.Image:
    return screenshot(360, 240)


@pytest.mark.parametrize("kind", ["screenshot", "logo"])
def test_default_png_is_a_dithered_palette_as_small_and_good_as_pngquant(
        kind: str, shot: Image.Image) -> None:
    source = shot if kind == "screenshot" else logo(200)
    data = encode(source, "PNG")
    ours = png(CompressOptions(output_format="png"), data)  # quality 80 by default
    theirs = pngquant(data)

    out = open_image(ours)
    assert out.format == "PNG"
    assert out.mode == "P"
    assert out.size == source.size
    assert len(ours) <= 1.10 * len(theirs), (len(ours), len(theirs))
    ours_score = ssimulacra2(source, out)
    theirs_score = ssimulacra2(source, open_image(theirs))
    assert ours_score >= theirs_score - 3, (ours_score, theirs_score)
    assert ours_score >= 70
    lossless = png(CompressOptions(output_format="png", quality=100), data)
    assert len(ours) <= 0.5 * len(lossless)


def test_alpha_survives_quantisation() -> None:
    source = logo(200)
    out = open_image(png(CompressOptions(output_format="png"), encode(source, "PNG")))
    assert "transparency" in out.info
    rgba = out.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.int16)
    expected = np.asarray(source.getchannel("A"), dtype=np.int16)
    assert alpha[0, 0] == 0
    assert alpha[100, 100] == 255
    assert np.abs(alpha - expected).mean() < 2.0


@pytest.mark.parametrize("options", [
    CompressOptions(output_format="png", quality=100),
    CompressOptions(output_format="png", lossless=True),  # the FluxImage dialect's PNG
])
def test_lossless_keeps_every_pixel_and_is_no_bigger_than_oxipng(
        options: CompressOptions, shot: Image.Image) -> None:
    data = encode(shot, "PNG")
    ours = png(options, data)
    assert same_pixels(open_image(ours), shot)
    assert len(ours) <= len(oxipng.optimize_from_memory(data, level=2))


def test_lossless_after_an_edit_is_optimised_too(shot: Image.Image) -> None:
    data = encode(shot, "PNG")
    ours = png(CompressOptions(output_format="png", quality=100, max_width=180), data)
    out = open_image(ours)
    assert out.size == (180, 120)
    assert len(ours) <= len(oxipng.optimize_from_memory(encode(out, "PNG"), level=2))


def _bit_depth(data: bytes) -> int:
    return data[24]  # IHDR: width, height, then bit depth


def test_sixteen_bit_png_stays_sixteen_bit_when_lossless() -> None:
    ramp = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    source = Image.fromarray(ramp)
    data = encode(source, "PNG")
    assert _bit_depth(data) == 16
    ours = png(CompressOptions(output_format="png", quality=100), data)
    assert _bit_depth(ours) == 16
    assert np.array_equal(np.asarray(open_image(ours)), np.asarray(open_image(data)))


def test_image_the_palette_cannot_hold_stays_truecolour() -> None:
    # Noisy gradients need far more than 256 colours to reach pngquant's minimum (65).
    source = photo(240, 160)
    ours = png(CompressOptions(output_format="png"), encode(source, "PNG"))
    out = open_image(ours)
    assert out.mode == "RGB"
    assert same_pixels(out, source)


def test_grayscale_is_quantised_to_fewer_greys() -> None:
    source = screenshot(360, 240).convert("L")
    data = encode(source, "PNG")
    ours = png(CompressOptions(output_format="png"), data)
    out = open_image(ours)
    greys = out.convert("RGB").getcolors(256)
    assert greys is not None
    assert all(r == g == b for _, (r, g, b) in greys)
    assert len(ours) < len(png(CompressOptions(output_format="png", quality=100), data))
    assert ssimulacra2(source, out) >= 70


def test_a_palette_that_does_not_pay_gives_way_to_lossless() -> None:
    # 320 flat stripes: more colours than a palette holds, so it must dither, while the
    # lossless image is a few hundred runs that deflate to almost nothing.
    stripes = np.repeat(np.stack([np.arange(320) % 256, np.arange(320) // 2,
                                  255 - np.arange(320) % 200], axis=-1)[None, :, :],
                        120, axis=0).astype(np.uint8)
    source = Image.fromarray(stripes, "RGB")
    data = encode(source, "PNG")
    ours = png(CompressOptions(output_format="png"), data)
    lossless = png(CompressOptions(output_format="png", quality=100), data)
    assert len(ours) <= len(lossless)


def test_preview_quantises_fast_and_final_optimises() -> None:
    assert PngEffort.for_job(4, True) == PngEffort(speed=10, oxipng_level=None)
    assert PngEffort.for_job(4, False) == PngEffort(speed=4, oxipng_level=2)
    assert PngEffort.for_job(9, False) == PngEffort(speed=1, oxipng_level=4)
    assert PngEffort.for_job(0, False) == PngEffort(speed=8, oxipng_level=1)
    default = PngEffort.for_job(4, False)
    # A 4K screenshot is optimised at -o 2; a 12 MP photo's truecolour a level lower.
    assert default.level_for(3840 * 2160 * 3) == 2
    assert default.level_for(12_000_000 * 3) == 1
    assert default.level_for(30_000_000 * 4) == 0
    data = encode(screenshot(360, 240), "PNG")
    preview = open_image(png(CompressOptions(output_format="png", mode="preview"), data))
    assert preview.mode == "P"


def test_quality_maps_to_pngquants_range() -> None:
    assert quality_range(80) == (65, 80)
    assert quality_range(10) == (0, 10)
    # A higher quality keeps more colours and costs more bytes.
    data = encode(screenshot(360, 240), "PNG")
    low = png(CompressOptions(output_format="png", quality=40), data)
    high = png(CompressOptions(output_format="png", quality=88), data)
    colours = [len(open_image(d).getpalette() or []) // 3 for d in (low, high)]
    assert colours[0] < colours[1]
    assert len(low) < len(high)


def test_metadata_written_with_the_palette(shot: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    data = encode(shot, "PNG", exif=exif.tobytes())
    kept = open_image(png(CompressOptions(output_format="png", strip_metadata=False), data))
    assert kept.mode == "P"
    assert kept.getexif()[0x010F] == "CameraMaker"
    stripped = png(CompressOptions(output_format="png"), data)
    assert b"eXIf" not in stripped
    assert not open_image(stripped).getexif()


def test_chunks_are_valid(shot: Image.Image) -> None:
    assert png_crc_ok(png(CompressOptions(output_format="png"), encode(shot, "PNG")))


def test_the_quality_used_is_reported(shot: Image.Image) -> None:
    data = encode(shot, "PNG")
    assert compress(data, CompressOptions(output_format="png", quality=70)).quality == 70
    assert compress(data, CompressOptions(output_format="png", lossless=True)).quality == 100


def test_a_broken_png_is_refused_even_when_lossless() -> None:
    from feather_core.errors import InvalidImage

    data = encode(screenshot(360, 240), "PNG")
    with pytest.raises(InvalidImage):
        compress(data[: len(data) // 2], CompressOptions(output_format="png", quality=100))
