"""atheris target: bytes -> decode -> pipeline -> encode; only feather_core errors allowed.

    python fuzz/fuzz_compress.py fuzz/corpus -max_total_time=60

Any other exception (or a crash) is a bug: atheris stops and writes the input to
``crash-*``. The seed corpus is generated on first run from tests/images.py and
tests/hostile.py, so nothing binary is committed.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports():
    from feather_core import CompressOptions, Limits, compress
    from feather_core.errors import FeatherError

# Small budgets keep each run fast; they are part of what is being fuzzed.
LIMITS = Limits(max_pixels=4_000_000, max_frames=50, timeout=10)
OPTIONS = (CompressOptions(), CompressOptions(output_format="png"),
           CompressOptions(output_format="jpeg", max_width=64),
           CompressOptions(output_format="webp", target_bytes=2_000))


def test_one(data: bytes) -> None:
    if not data:
        return
    options = OPTIONS[data[0] % len(OPTIONS)]
    with contextlib.suppress(FeatherError):  # a documented answer
        compress(data[1:], options, LIMITS)


def write_seeds(folder: Path) -> None:
    from tests import hostile
    from tests.images import animated_gif, encode, photo

    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        return
    image = photo(48, 32, mode="RGBA")
    seeds = {f"seed.{fmt.lower()}": encode(image if fmt in ("PNG", "WEBP") else
                                           image.convert("RGB"), fmt)
             for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")}
    seeds["anim.gif"] = animated_gif(3)
    seeds["bomb.png"] = hostile.png_header(9000, 9000)
    seeds["small.svg"] = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'
    for name, data in seeds.items():
        (folder / name).write_bytes(b"\x00" + data)


def main() -> None:
    folders = [a for a in sys.argv[1:] if not a.startswith("-")]
    if folders:
        write_seeds(Path(folders[0]))
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
